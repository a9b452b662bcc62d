"""The zoom probe (benchmarks/zoom.py) on the committed test subset: its scans are what
it says, and the service reads them alike at every zoom."""

import numpy as np

from benchmarks.realworld import local_classifier
from benchmarks.zoom import mnist_scans, probe


def test_scans_fill_their_frame_at_17_grey_levels(mnist_test):
    scans = mnist_scans(mnist_test.images[:50])
    assert scans.shape == (50, 8, 8)
    assert np.all(np.isclose(scans * 16, np.round(scans * 16)))
    for s in scans:
        rows, cols = s.any(1), s.any(0)
        assert (rows[0] and rows[-1]) or (cols[0] and cols[-1])  # the longer side touches both edges


def test_probe_reads_every_zoom_alike(mnist_test):
    labels = mnist_test.labels[:40]
    result = probe(mnist_scans(mnist_test.images[:40]), labels, [8, 24, 160], local_classifier())
    assert result.refused == 0
    assert result.same >= 0.95  # 97.5 % on these 40; 87.5 % before the zoom change
    assert result.worst >= 0.95
