"""Non-IID metrics on hand-computed inputs; empty clients are NaN/None and left out of the means."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedpart
from fedpart.metrics import client_metrics, partition_summary, size_summary

FAST = settings(max_examples=40, deadline=None)


def test_one_hot_clients_against_a_uniform_global():
    metrics = client_metrics(np.eye(4) * 5)  # client c holds only label c; global is uniform
    assert metrics.entropy == pytest.approx([0.0] * 4)
    assert metrics.tv == pytest.approx([0.75] * 4)  # 0.5 * (0.75 + 3 * 0.25)
    assert metrics.emd == pytest.approx([1.5] * 4)
    assert metrics.hellinger == pytest.approx([math.sqrt(0.5)] * 4)  # sqrt(0.5 * (0.25 + 3 * 0.25))


def test_a_client_with_the_global_mix_has_zero_distance_and_full_entropy():
    metrics = client_metrics(np.array([[2, 2, 2, 2], [1, 1, 1, 1]]))
    assert metrics.entropy == pytest.approx([2.0, 2.0])
    for name in ("tv", "hellinger", "emd"):
        assert getattr(metrics, name) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_a_three_to_one_client_against_an_even_global():
    metrics = client_metrics(np.array([[3, 1], [1, 3]]))
    entropy = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    hellinger = math.sqrt(0.5 * ((math.sqrt(0.75) - math.sqrt(0.5)) ** 2 + (math.sqrt(0.25) - math.sqrt(0.5)) ** 2))
    assert metrics.entropy == pytest.approx([entropy, entropy])
    assert metrics.tv == pytest.approx([0.25, 0.25])
    assert metrics.emd == pytest.approx([0.5, 0.5])
    assert metrics.hellinger == pytest.approx([hellinger, hellinger])


def test_the_global_distribution_is_pooled_over_clients_by_rows():
    # client sizes differ: global = (8+0, 0+2) / 10 = (0.8, 0.2), not the mean of client mixes
    metrics = client_metrics(np.array([[8, 0], [0, 2]]))
    assert metrics.tv == pytest.approx([0.2, 0.8])


def test_empty_clients_are_nan_and_left_out_of_the_means():
    counts = np.array([[4, 0], [0, 0], [0, 4]])
    metrics = client_metrics(counts)
    for name in ("entropy", "tv", "hellinger", "emd"):
        values = getattr(metrics, name)
        assert math.isnan(values[1]) and not np.isnan(values[[0, 2]]).any()
    summary = partition_summary(counts, counts.sum(axis=1))
    assert summary["mean_tv"] == pytest.approx(0.5)  # mean over the two non-empty clients only
    assert summary["mean_entropy"] == pytest.approx(0.0)
    assert summary["global_entropy"] == pytest.approx(1.0)
    assert summary["size"]["empty_clients"] == 1
    assert summary["clients"] == 3


def test_all_empty_clients_give_none_means():
    summary = partition_summary(np.zeros((2, 3)), np.zeros(2))
    assert summary["mean_tv"] is None and summary["mean_entropy"] is None


def test_summary_without_labels_has_only_sizes():
    summary = partition_summary(None, np.array([1, 2, 3, 10]))
    assert "mean_tv" not in summary
    assert summary["size"] == size_summary(np.array([1, 2, 3, 10]))
    assert summary["size"]["median"] == 2.5 and summary["size"]["max"] == 10.0
    assert summary["size"]["mean"] == 4.0 and summary["size"]["std"] == pytest.approx(np.std([1, 2, 3, 10]))


@FAST
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_metric_ranges_and_emd_is_twice_tv(clients, labels, seed):
    counts = np.random.default_rng(seed).integers(0, 20, size=(clients, labels))
    metrics = client_metrics(counts)
    nonempty = counts.sum(axis=1) > 0
    assert np.isnan(metrics.tv[~nonempty]).all()
    tv, hellinger, entropy = metrics.tv[nonempty], metrics.hellinger[nonempty], metrics.entropy[nonempty]
    assert np.all((tv >= -1e-12) & (tv <= 1 + 1e-12))
    assert np.all((hellinger >= -1e-12) & (hellinger <= 1 + 1e-12))
    assert np.all((entropy >= -1e-12) & (entropy <= math.log2(labels) + 1e-9))
    assert np.allclose(metrics.emd[nonempty], 2 * tv)
    # Hellinger^2 <= TV <= sqrt(2) * Hellinger (standard inequalities)
    assert np.all(hellinger**2 <= tv + 1e-9) and np.all(tv <= math.sqrt(2) * hellinger + 1e-9)


def test_manifest_records_none_for_empty_clients(tmp_path, table_writer):
    # quantity skew with a tiny alpha leaves clients empty; find a seed that does
    columns = {"text": [f"t{i}" for i in range(30)], "label": [i % 3 for i in range(30)]}
    path = table_writer(tmp_path / "in.parquet", columns)
    for seed in range(20):
        out = tmp_path / f"out{seed}"
        manifest = fedpart.partition(
            path, out=out, scheme="quantity", alpha=0.01, clients=6, label_col="label", seed=seed, plot=False
        )
        empty = [c for c in manifest.clients if c.rows == 0]
        if empty:
            break
    else:
        pytest.fail("no seed gave an empty client")
    assert all(c.metrics == {"entropy": None, "tv": None, "hellinger": None, "emd": None} for c in empty)
    full = [c for c in manifest.clients if c.rows > 0]
    expected = np.mean([c.metrics["tv"] for c in full])
    assert manifest.metrics["mean_tv"] == pytest.approx(expected, abs=1e-5)
    assert manifest.metrics["size"]["empty_clients"] == len(empty)
    assert "NaN" not in (out / "manifest.json").read_text()
