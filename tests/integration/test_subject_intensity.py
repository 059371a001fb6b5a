"""benchmarks/subject_intensity.py: per-subject movement intensity and its outliers."""

from __future__ import annotations

from benchmarks.subject_intensity import outliers, subject_means


def test_subject_means_on_real_usc_had(small_data_dir):
    table = subject_means(small_data_dir / "usc-had")
    assert set(table) == {"walking_forward", "sitting", "standing"}
    assert set(table["sitting"]) == {
        "right_hip_acc std",
        "right_hip_acc mean",
        "right_hip_gyro std",
        "right_hip_gyro mean",
    }
    walk, sit = table["walking_forward"], table["sitting"]
    for subject in ("1", "2"):
        # walking shakes the hip far more than sitting, and the still hip reads ~1 g
        assert walk["right_hip_acc std"][subject] > 5 * sit["right_hip_acc std"][subject]
        assert 8.0 < sit["right_hip_acc mean"][subject] < 11.5
        assert walk["right_hip_gyro mean"][subject] > sit["right_hip_gyro mean"][subject]


def test_outliers_flags_only_values_outside_every_other_subject():
    table = {"running": {"acc std": {"1": 9.0, "2": 12.0, "3": 10.0, "14": 6.0}, "gyro mean": {"1": 2.0, "2": 3.0}}}
    found = outliers(table, min_ratio=1.25)
    # 14 is 1.5x below the lowest other subject; 2 is only 1.2x above the highest other one.
    # With two subjects, each is 1.5x from the other.
    assert [(o["subject"], o["measure"]) for o in found if o["measure"] == "acc std"] == [("14", "acc std")]
    low = found[[o["subject"] for o in found].index("14")]
    assert (low["others_min"], low["others_max"], low["ratio_to_nearest"]) == (9.0, 12.0, round(6.0 / 9.0, 3))
    assert {o["subject"] for o in found if o["measure"] == "gyro mean"} == {"1", "2"}
