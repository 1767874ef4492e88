"""One exception family for everything fedpart reports to a user.

The CLI prints ``str(error)`` as a single line and exits with ``error.exit_code``:
2 for bad input or an impossible request, 1 for internal failures.
"""

from __future__ import annotations


class FedpartError(Exception):
    """Base class of all errors fedpart raises on purpose."""

    exit_code = 1


class InputError(FedpartError):
    """The input (file, column, value or option) is wrong; the message says how to fix it."""

    exit_code = 2


class PlanError(FedpartError):
    """The requested partition cannot be drawn from these counts (e.g. an infeasible minimum size)."""

    exit_code = 2


class OutputError(FedpartError):
    """The output location cannot be written as asked (exists without --overwrite, not writable)."""

    exit_code = 2


class DivergedError(FedpartError):
    """Training diverged: the aggregated weights of a round are NaN or infinite (e.g. a too large ``--lr``)."""

    exit_code = 2


class FedpartWarning(UserWarning):
    """A warning fedpart gives its user on purpose; the CLI prints these (and only these, not the
    deprecation notices of dependencies) as one ``warning:`` line each."""


class ExcessClientsWarning(FedpartWarning):
    """A federated run asks for more clients per round than its partition has non-empty clients
    (every round then trains all of them). The CLI gives it only for a ``--clients-per-round`` on
    the command line: its default (10) means "at most 10", as its help says."""
