"""Label meanings read from dataset.json: region names, the label names of a figure, the BraTS region dataset."""

from nnunet_ext.labels import (BRATS_REGION_LABELS, BRATS_REGIONS_CLASS_ORDER, ignore_label, is_brats_region_dataset,
                               label_names, region_definitions, region_name, unrecoverable_regions)

BRATS = {"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
         "regions_class_order": [1, 2, 3]}


def test_a_region_is_named_as_dataset_json_names_it_whatever_the_container():
    assert region_name(BRATS, (2, 3)) == "tumor core" == region_name(BRATS, [2, 3])
    assert region_name(BRATS, 3) == "enhancing tumor"  # nnU-Net gives a one-label region as an int
    assert region_name(BRATS, (1, 2)) is None


def test_each_label_value_takes_the_name_of_the_smallest_region_holding_it():
    assert label_names(BRATS) == {1: "whole tumor", 2: "tumor core", 3: "enhancing tumor"}
    assert label_names({"labels": {"background": 0, "liver": 1, "tumour": 2}}) == {1: "liver", 2: "tumour"}


def test_the_ignore_label_is_no_region():
    dataset_json = {"labels": {"background": 0, "lesion": 1, "ignore": 2}}
    assert ignore_label(dataset_json) == 2 and ignore_label(BRATS) is None
    assert region_definitions(dataset_json) == {"lesion": (1,)}


def test_the_brats_region_dataset_is_recognised_as_json_writes_it():
    assert is_brats_region_dataset(BRATS)
    assert is_brats_region_dataset({"labels": BRATS_REGION_LABELS, "regions_class_order": BRATS_REGIONS_CLASS_ORDER})
    assert not is_brats_region_dataset({"labels": {**BRATS["labels"], "tumor core": [1, 3]}})


def test_a_regions_class_order_that_overwrites_a_region_is_found():
    brats = {"labels": dict(BRATS_REGION_LABELS), "regions_class_order": [1, 2, 3]}
    assert unrecoverable_regions(brats) == []
    # enhancing voxels (value 3) are painted 1 last, tumour-core voxels (2) are painted 2 after whole tumour's 3
    assert unrecoverable_regions({**brats, "regions_class_order": [3, 2, 1]}) == ["tumor core", "enhancing tumor"]
    # the region that comes last wins: whole tumour painted over everything leaves only whole tumour right
    assert unrecoverable_regions({**brats, "labels": {"background": 0, "enhancing tumor": [3], "tumor core": [2, 3],
                                                      "whole tumor": [1, 2, 3]}}) == ["enhancing tumor", "tumor core"]
    assert unrecoverable_regions({"labels": {"background": 0, "lesion": 1}}) == []
