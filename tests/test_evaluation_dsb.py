"""match on real DSB2018 label images: self-score 1.0 and agreement with a per-object reference."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from segmentation.evaluation import DSB_THRESHOLDS, evaluate_dataset, match

N_IMAGES = 6


@pytest.fixture(scope="module")
def dsb_labels():
    from segmentation.datasets.dsb import default_dsb_root, load_dsb

    root = default_dsb_root()
    if not root.is_dir():
        pytest.skip(f"DSB2018 stage1_train not found at {root} (set $SEGMENTATION_DSB_ROOT)")
    ids = sorted(p.name for p in root.iterdir() if (p / "masks").is_dir())
    picked = [ids[i] for i in np.linspace(0, len(ids) - 1, N_IMAGES).astype(int)]
    samples, _ = load_dsb(root, ids=picked)
    return [s.labels for s in samples]


def reference_tp(gt, pred):
    """Per-object loop on bounding boxes: TP at the DSB thresholds (unique above IoU 0.5)."""
    pred_area = np.bincount(pred.ravel())
    ious = []
    for i, sl in enumerate(ndi.find_objects(gt), start=1):
        if sl is not None:
            g = gt[sl] == i
            for j in np.unique(pred[sl][g]):
                if j:
                    inter = int((g & (pred[sl] == j)).sum())
                    ious.append(inter / (int(g.sum()) + pred_area[j] - inter))
    return [int((np.asarray(ious) > t).sum()) for t in DSB_THRESHOLDS]


@pytest.mark.dsb
def test_dsb_truth_against_itself_and_perturbed_copies(dsb_labels):
    res = evaluate_dataset([(lab, lab) for lab in dsb_labels])
    assert res.mean_score == 1.0 and res.n_true == sum(int(lab.max()) for lab in dsb_labels)
    for lab in dsb_labels:
        eroded = np.where(find_boundaries(lab, mode="inner"), 0, lab)
        shifted = np.zeros_like(lab)
        shifted[:, 2:] = lab[:, :-2]
        for pred in (eroded, shifted):
            r = match(lab, pred)
            assert r.tp.tolist() == reference_tp(lab, pred)
            assert 0.0 < r.mean_score < 1.0
