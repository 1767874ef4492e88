"""Where a gendered word or a first name is part of the name of something, and is left as it is.

Counterfactual augmentation swaps words that say something about a person's gender (Lu et al. 2018;
Hall Maudslay et al. 2019 swap first names too). A lexicon word can also be a piece of a proper
name -- a surname (``Larry King``), a team, brand or work (``Dallas Cowboys``, ``Burger King``,
``Wonder Woman``, ``Spider-Man``), a place (``Notre Dame``) -- or of a host or file name
(``teer1.acpub.duke.edu``, ``/usr/man``); a first name can be a surname (``Henry Spencer``), part
of a place (``San Jose``) or a book cited by chapter and verse (``John 3:16``). Swapping those
changes what the text is about. Reliable proper-name detection needs named-entity recognition,
which the default path does not run (it tags only small windows around her/his); the rules here
read the letters next to the word and nothing else, and were chosen by counting, on samples of the
corpora in ``../shared/data`` (AG News, SST-2, 20 Newsgroups, DialogSum, XQuAD, WNUT-17, BOLD),
how many wrong swaps each rule removes against how many right ones (``tests/test_augment_realdata.py``).

God is named with gendered words that stay: ``the Lord``, ``our Lord``, ``Lord God``, ``Lord Jesus``
(:func:`names_god`; ``Lord Byron`` is a title and swapped), and, in a text that names God, a
pronoun with the reverential capital in the middle of a sentence (``the Lord said He would come``;
:func:`is_reverential_capital`, :func:`mentions_god`).

:func:`in_host_or_path`, :func:`names_god`, :func:`is_reverential_capital` and
:func:`in_place_or_reference` (first names, with ``names=True``) always apply.
:func:`in_multiword_name` applies with ``GenderSwapper(keep_proper_names=True)``: it removes many
more wrong swaps than right ones, but it does leave some right ones (headline case, ``Kills
Woman in Gaza``) and makes a lexicon word's swap depend on its neighbours.

A capitalised noun is read as part of a multi-word name when it directly follows, on the same line
and across spaces only, another capitalised word that is not a function word (``The King``, ``My
Father``, ``Dear Sir`` are swapped), and no capitalised word follows it (``Federal Reserve Chairman
Alan Greenspan``: a title before a name, swapped). Pronouns and abbreviated titles are not nouns
of names. Text in capitals throughout carries no such signal and is swapped as before. The same
holds for a word joined by one hyphen to a capitalised word (``Spider-Man``, ``X-Men``,
``Wen-King``; not ``ex-wife`` or ``actor-turned-California-governor``).

These functions are pure and look only at the text around one word; the swapper calls them for
the words it found in the lexicon, so text without lexicon words costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# words that open a sentence, a noun phrase or an address; capitalised before a lexicon noun they
# make a sentence start or a determiner, not the first word of a name ("The King", "His Son",
# "Dear Sir", "Yes Sir", "Thank you Sir")
FUNCTION_WORDS = frozenset(
    """a an the this that these those his her hers him he she it its my our your their thy thine
    whose which what who whom i you we they me us them himself herself
    and or but nor so yet if as than then when while where why how
    is was are were be been am do does did has have had will would shall should can could may might must
    to of in on at by for from with into onto over under about after before upon
    o oh yes no dear hello hi hey good morning evening night thank thanks please sorry ok okay well
    not all any each every some both either neither only even just also too very more most many much
    let like says said""".split()
)
_WORD_BEFORE = re.compile(r"(\w+) +\Z")
_WORD_AFTER = re.compile(r" +(\w+)")
#: an all-capital word of at most this many letters after a name is an acronym (RT, TV, US)
_ACRONYM_LETTERS = 3
# one hyphen, not a dash written "--"
_HYPHEN_BEFORE = re.compile(r"(\w+)-\Z")
_HYPHEN_AFTER = re.compile(r"-(\w+)")
# a path in a token: at its start, or after = : ; , or an opening bracket or quote ("MANPATH=/usr/man")
_PATH_IN_TOKEN = re.compile(r"(?:^|[=:;,(\[{\"'])[/~$]|\w:\\")
# first names: a place whose name starts with a saint or a feature ("San Jose", "St. Paul",
# "Santa Barbara", "Fort Caroline"); a book cited by chapter and verse ("John 3:16", "1 Peter 5:7")
PLACE_PREFIXES = frozenset("san santa santo sao são st ste saint fort ft port lake mount mt cape".split())
_PLACE_BEFORE = re.compile(r"(\w+)\.? +\Z")
_CHAPTER_AND_VERSE = re.compile(r" *\d+ *: *\d")
# a surname after a title: "Mrs. Brandon", "Dr Anthony" (no capitalised word after it)
_SURNAME_TITLE_BEFORE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Mister|MR|MRS|MS|DR)\.? +\Z")
# a name that opens the name of an organisation, place, event or work: "Charles Schwab Corp.", "James
# Hardie Industries", "Claire's Stores", "Logan Airport", "Charles River", "John Q. Hammons Classic"
_NAMED_THING_AFTER = re.compile(r"(?:(?:['\u2019]s)?(?: +(?:[A-Z]\.|[A-Z][\w&'\u2019.-]*))){1,4}")
NAMED_THING_HEADS = frozenset(  # compared without a trailing dot or comma ("Corp.", "Inc.,")
    """corp corporation inc incorporated co company companies ltd llc plc group holdings
    industries industry enterprises partners stores store bank bancorp capital securities fund foundation trust
    institute university college school academy hospital clinic airport station river island islands lake bay
    beach bridge street avenue road park county town city hall center centre museum library stadium arena cup
    classic open trophy prize award awards memorial festival theatre theater records studios pictures
    network""".split()
)
# capitalised words before a first name that do not make it a surname: sentence openers, greetings,
# calendar words ("Yesterday John said", "Hi Tom", "on Monday Mary")
NOT_A_FIRST_NAME = frozenset(
    """a an the and but or so if as at by for from in into of on to with without yet then now when while after
    is are was were has have had do does did can could will would shall should might must let ask tell call
    before since because although though once until unless where why how what who whom which that this these those
    there here today tonight yesterday tomorrow meanwhile later earlier also still maybe perhaps please sorry
    thanks thank hi hello hey dear yes no oh ok okay well welcome congratulations goodbye bye good morning
    evening afternoon night excuse pardon sir madam mr mrs ms miss dr prof mister uncle aunt auntie
    grandpa grandma cousin brother sister father mother dad mom mum daddy mommy son daughter king queen prince
    princess lord lady pope saint st emperor empress monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december christmas easter
    ap reuters afp upi cnn bbc""".split()
)
# God: "the Lord", "our Lord", "Lord God", "Lord Jesus" (LORD: the small capitals of English Bibles)
_LORD_BEFORE = re.compile(r"\b(?:the|our)\s+\Z", re.IGNORECASE)
_LORD_AFTER = re.compile(r"\s+(?:God|GOD|Jesus|JESUS|Christ|CHRIST)\b")
_POSSESSIVE_S = re.compile(r"['\u2019][sS]\b")
_GOD = re.compile(r"\b(?:God|GOD|Lord|LORD|Jesus|JESUS|Christ|CHRIST)\b")
#: pronouns written with a capital in the middle of a sentence when they refer to God
REVERENTIAL_PRONOUNS = frozenset({"he", "his", "him", "himself"})
# what comes before cannot end a sentence: a letter, comma or semicolon, across whitespace (not a
# digit: "Luke 10:16-18  He that heareth" starts a quotation after a citation)
_MID_SENTENCE = re.compile(r"(?:[^\W\d_]|[,;])\s{0,40}\Z")


def _word_before(text: str, start: int) -> str | None:
    """The word directly before ``start`` across spaces only (same line, no punctuation), or None."""
    if start == 0 or text[start - 1] != " ":
        return None
    match = _WORD_BEFORE.search(text, max(0, start - 60), start)
    return match.group(1) if match else None


def _capital_follows(text: str, end: int) -> bool:
    """Whether the next word after ``end``, across spaces only, starts with a capital letter and is
    no short acronym (``Clark Duke RT``: Twitter's RT does not make the name headline case; a
    longer word in capitals is kept as a capital: AG News' datelines, ``Hamas Man GAZA (Reuters)``)."""
    match = _WORD_AFTER.match(text, end)
    if match is None or not match.group(1)[0].isupper():
        return False
    following = match.group(1)
    return not (2 <= len(following) <= _ACRONYM_LETTERS and following.isupper())


def _starts_name(word: str, gendered: Collection[str]) -> bool:
    """Whether ``word`` can be the capitalised first part of a name: a capital, not a function word
    and not itself a gendered word (``Man-Woman``, ``Mother Daughter`` are pairs of roles)."""
    lower = word.lower()
    return word[:1].isupper() and lower not in FUNCTION_WORDS and lower not in gendered


def in_multiword_name(text: str, start: int, end: int, gendered: Collection[str], all_capitals: bool) -> bool:
    """Whether the lexicon noun at ``[start, end)`` of ``text`` reads as part of a multi-word name.

    True for a capitalised noun directly after a capitalised non-function word on the same line and
    before no capitalised word (``Larry King``, ``Notre Dame``, ``the Dallas Cowboys``, ``Repo Man``),
    and for a word joined by one hyphen to a capitalised word (``Spider-Man``, ``X-Men``). False in
    text written in capitals throughout. ``gendered`` holds the lexicon's words (lower case), which
    never start a name here. The caller leaves out pronouns and abbreviated titles.
    """
    if all_capitals:
        return False
    word = text[start:end]
    if len(word) > 1 and word.isupper():
        return False
    if start > 0 and text[start - 1] == "-":
        match = _HYPHEN_BEFORE.search(text, max(0, start - 60), start)
        if match is not None and _starts_name(match.group(1), gendered):
            return True
    if text.startswith("-", end):
        match = _HYPHEN_AFTER.match(text, end)
        if match is not None and _starts_name(match.group(1), gendered):
            return True
    if not (word[:1].isupper() and word[1:].islower()):
        return False
    before = _word_before(text, start)
    return before is not None and _starts_name(before, gendered) and not _capital_follows(text, end)


def in_host_or_path(text: str, start: int, end: int) -> bool:
    """Whether the word at ``[start, end)`` is part of a host or file name (a lower-case word with a
    letter or digit across a dot: ``acpub.duke.edu``, ``rx.man``) or of a path that starts with
    ``/``, ``~``, ``$`` or a drive letter (``/usr/man``, ``MANPATH=$HOME/man``; not ``his/her``)."""
    word = text[start:end]
    before = text[start - 1] if start > 0 else ""
    # a lower-case word after a letter or digit and a dot, or before a dot and a lower-case letter
    # or digit; "Mr.Jones" and "actor.He" are a missing space, not a host name
    if word.islower():
        if before == "." and start > 1 and text[start - 2].isalnum():
            return True
        if text.startswith(".", end) and end + 1 < len(text) and (text[end + 1].islower() or text[end + 1].isdigit()):
            return True
    if before in ("/", "\\"):
        token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start), text.rfind("\t", 0, start)) + 1
        return _PATH_IN_TOKEN.search(text[token_start:start]) is not None
    return False


def in_place_or_reference(text: str, start: int, end: int, first_names: Collection[str]) -> bool:
    """Whether the first name at ``[start, end)`` of ``text`` names something other than a person's
    first name:

    - a place (after San, Santa, St., Fort, ...: ``San Jose``), a book cited by chapter and verse
      (``John 3:16``);
    - the first word of an organisation, place, event or work: capitalised words after it include a
      head noun of :data:`NAMED_THING_HEADS` (``Charles Schwab Corp.``, ``Logan Airport``);
    - a surname, with no capitalised word after it: after a title (``Mrs. Brandon``), or after a
      capitalised word that is no sentence opener, greeting or calendar word of
      :data:`NOT_A_FIRST_NAME` -- another first name (``Henry Spencer``) or one not on the list
      (``LeBron James``, ``Thierry Henry``; in ``Mary Elizabeth Hartman`` both are first names).
    """
    if _CHAPTER_AND_VERSE.match(text, end):
        return True
    if start > 0 and text[start - 1] == " ":
        match = _PLACE_BEFORE.search(text, max(0, start - 60), start)
        if match is not None and match.group(1).lower() in PLACE_PREFIXES:
            return True
    if _opens_named_thing(text, start, end):
        return True
    if _capital_follows(text, end):
        return False
    if _SURNAME_TITLE_BEFORE.search(text, max(0, start - 8), start) is not None:
        return True
    before = _word_before(text, start)
    if before is None or not before[:1].isupper() or not before[1:2].isalpha():
        return False
    return before.lower() in first_names or (before.lower() not in NOT_A_FIRST_NAME and not before.isupper())


def _opens_named_thing(text: str, start: int, end: int) -> bool:
    """Whether the capitalised words after the name at ``[start, end)`` include a head noun of
    :data:`NAMED_THING_HEADS` (``Charles Schwab Corp.``, ``Claire's Stores``). After a name in
    lower case, words in capitals are a dateline (``Bryan Robinson LAKE FOREST``) and do not count;
    after a name in capitals only the next word does (``GEORGE TOWN``, not the byline ``RACHEL
    KONRAD CARSON CITY``)."""
    after = _NAMED_THING_AFTER.match(text, end)
    if after is None:
        return False
    words = after.group().split()
    if text[start:end].isupper():
        words = words[:1]
    else:
        words = [w for w in words if not (w.isupper() and len(w) > 1)]
    return any(w.lower().rstrip(".,") in NAMED_THING_HEADS for w in words)


def names_god(text: str, start: int, end: int) -> bool:
    """Whether the ``Lord`` (or Bible ``LORD``) at ``[start, end)`` of ``text`` names God: after
    ``the`` or ``our`` (``the Lord said``, ``our Lord``), or before God, Jesus or Christ (``Lord
    God``, ``Lord Jesus``) -- or is kept as a name: the possessive ``Lord's`` names God (``Lord's
    Prayer``, ``Lord's Day``) or a place (``Lord's`` cricket ground, XQuAD's ``'Lord's Enclosure'``)
    far more often than a lord. A lower-case lord and a title before a name (``Lord Byron``) do not."""
    if text[start:end] not in ("Lord", "LORD"):
        return False
    return (_LORD_BEFORE.search(text, max(0, start - 12), start) is not None or _LORD_AFTER.match(text, end) is not None
            or _POSSESSIVE_S.match(text, end) is not None)


def is_reverential_capital(text: str, start: int, end: int) -> bool:
    """Whether the he/his/him/himself at ``[start, end)`` of ``text`` is written with a capital in the
    middle of a sentence (``said He would``), as English writes pronouns that refer to God. Not at
    the start of a text or after punctuation that can end a sentence or open a quote."""
    word = text[start:end]
    if word.lower() not in REVERENTIAL_PRONOUNS or not (word[:1].isupper() and word[1:].islower()):
        return False
    return _MID_SENTENCE.search(text, max(0, start - 48), start) is not None


def mentions_god(text: str) -> bool:
    """Whether ``text`` names God (God, Lord, Jesus or Christ, capitalised), so that a reverential
    capital in it refers to God."""
    return _GOD.search(text) is not None
