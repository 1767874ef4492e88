"""Flower strategies that sample clients the way ``fedpart train`` does and fail loudly.

:class:`FedpartFedAvg` is Flower's message-API ``FedAvg`` (its weighted averaging, by each reply's
``num-examples``) whose ``configure_train`` sends the round's model to the nodes of the partitions
that :func:`fedpart.train.federated.sample_clients` picks for that round and seed. FedProx differs
from FedAvg only on the clients (the proximal term), so both use this strategy; the ``proximal-mu``
in the train config tells the clients which one it is (as Flower's own ``FedProx`` does).

Which node holds which partition is asked once, before the first round, with a ``query`` message
(:func:`map_partitions`): Flower's server sees node ids, while fedpart samples partition ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedpart.errors import FedpartError
from fedpart.train.federated import FederatedConfig, sample_clients

PARTITION_ID = "partition-id"
NUM_EXAMPLES = "num-examples"
#: a client's mean training loss in its train reply (averaged by Flower weighted by num-examples)
TRAIN_LOSS = "train-loss"


def map_partitions(grid: Grid, num_partitions: int, timeout: float = 600.0, stall: float = 60.0) -> dict[int, int]:
    """Ask every connected node its ``partition-id``; return ``{partition id: node id}``.

    Waits (up to ``timeout`` seconds) until ``num_partitions`` nodes are connected, but gives up
    after ``stall`` seconds in which no node joined (a simulation with fewer ``num_supernodes`` than
    partitions never gets more).

    Raises:
        FedpartError: too few nodes in time, a node that failed to answer, or partition ids that are
            not exactly ``0..num_partitions-1``.
    """
    started = last_change = time.monotonic()
    seen = -1
    while len(nodes := list(grid.get_node_ids())) < num_partitions:
        now = time.monotonic()
        if len(nodes) != seen:
            seen, last_change = len(nodes), now
        if now - started > timeout or now - last_change > stall:
            waited = f"within {timeout:.0f} s" if now - started > timeout else f"and none joined for {stall:.0f} s"
            raise FedpartError(f"only {len(nodes)} of {num_partitions} SuperNodes connected {waited}; start one "
                               "SuperNode per partition (node config partition-id=0..N-1; in a simulation, "
                               f"num_supernodes={num_partitions})")
        time.sleep(min(1.0, stall / 10))
    queries = [Message(RecordDict({"config": ConfigRecord()}), dst_node_id=node, message_type=MessageType.QUERY)
               for node in nodes]
    partitions: dict[int, int] = {}
    for reply in grid.send_and_receive(queries, timeout=timeout):
        if reply.has_error():
            raise FedpartError(f"node {reply.metadata.src_node_id} failed to report its partition: "
                               f"{reply.error.reason}")
        partition = int(reply.content["config"][PARTITION_ID])
        if partition in partitions:
            raise FedpartError(f"two SuperNodes claim partition-id {partition}; give each node its own")
        partitions[partition] = reply.metadata.src_node_id
    if sorted(partitions) != list(range(num_partitions)):
        absent = sorted(set(range(num_partitions)) - set(partitions))
        raise FedpartError(f"no SuperNode holds partition(s) {absent[:10]} of 0..{num_partitions - 1}")
    return partitions


class FedpartFedAvg(FedAvg):
    """Flower ``FedAvg`` with fedpart's per-round client sampling.

    ``sizes`` are the partitions' training rows (empty partitions are never sampled, as in fedpart),
    ``partition_nodes`` maps partition ids to node ids (:func:`map_partitions`). ``chosen[r]`` records
    the partitions sampled in round ``r``.
    """

    def __init__(self, sizes: Sequence[int], config: FederatedConfig, partition_nodes: dict[int, int]) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=len(partition_nodes))
        self.sizes = list(sizes)
        self.config = config
        self.partition_nodes = partition_nodes
        self.chosen: dict[int, list[int]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global model to the nodes of this round's sampled partitions."""
        chosen = sample_clients(self.sizes, self.config.clients_per_round, self.config.sampling,
                                self.config.seed, server_round)
        self.chosen[server_round] = [int(c) for c in chosen]
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return [Message(content=record, message_type=MessageType.TRAIN, dst_node_id=self.partition_nodes[c])
                for c in self.chosen[server_round]]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Flower's weighted average; any failed client stops the run (a silently smaller round would
        no longer be the fedpart experiment)."""
        replies = list(replies)
        failed = [r for r in replies if r.has_error()]
        if failed:
            raise FedpartError(f"round {server_round}: {len(failed)} client(s) failed, e.g. node "
                               f"{failed[0].metadata.src_node_id}: {failed[0].error.reason}")
        if len(replies) != len(self.chosen[server_round]):
            raise FedpartError(f"round {server_round}: {len(replies)} of {len(self.chosen[server_round])} "
                               "clients replied before the timeout")
        return super().aggregate_train(server_round, replies)
