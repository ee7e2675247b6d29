"""Heatmaps: a photo's maps are what its summaries average; change maps show where skin changed."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def redder_left_cheek():
    """A phantom baseline and a retake with hemoglobin added to the left cheek only."""
    from analyzer.compare import compare_analysed
    from analyzer.phantom import Capture, Change, make_face, photograph
    from analyzer.pipeline import analyse_pixels

    face = make_face(scale=6.0, seed=2)
    rng = np.random.default_rng(8)
    b = analyse_pixels(photograph(face, [], Capture.random(rng, 0.5), seed=20)[0])
    f = analyse_pixels(photograph(face, [Change("redness", 0.25, region="left_cheek")],
                                  Capture.random(rng, 0.5), seed=21)[0])
    comparison, alignment = compare_analysed(b, f)
    assert alignment.ok
    return b, f, comparison.to_dict()


def test_summary_maps_average_to_the_summaries(redder_left_cheek):
    from analyzer.metrics.maps import summary_maps
    from analyzer.metrics.pigmentation import burden_map

    photo = redder_left_cheek[0]
    img, summary = photo.skin_image, photo.result.summary
    maps = summary_maps(img)
    assert np.mean(maps["redness"][img.skin]) == pytest.approx(summary["redness"], abs=2e-6)
    support = burden_map(img)[1]
    assert 1000 * np.mean(maps["pigmentation"][img.skin & support]) == pytest.approx(summary["pigmentation"],
                                                                                      rel=1e-4)
    # the local RMS, pooled over the face, is the texture index (window edges aside)
    texture = 1000 * np.sqrt(np.mean(np.square(maps["texture"][maps["skin"]])))
    assert texture == pytest.approx(summary["texture"], rel=0.03)


def test_change_maps_show_where_redness_was_added(redder_left_cheek):
    from analyzer import views

    b, f, result = redder_left_cheek
    base = views.FaceView(b.photo.pixels, b.face, b.regions)
    before, after, skin = views.aligned_pair(base, f.photo.pixels, result["alignment"]["matrix"])
    values = views.change_values(before, after, skin, result)
    box = views.face_crop_box(b.regions["whole_face"])
    px_per_mm = result["baseline"]["summary"]["px_per_mm"]

    def region(name):
        mask = views._at_work_scale(views.crop(b.regions[name].astype(np.uint8), box).astype(bool), px_per_mm)
        return mask & values["skin"]

    left, right, forehead = region("left_cheek"), region("right_cheek"), region("forehead")
    assert left.sum() > 1000 and right.sum() > 1000
    redness = values["redness"]
    assert np.median(redness[left]) > 0.1                # 0.25 OD injected, feathered at the edges
    assert abs(np.median(redness[right])) < 0.02
    assert abs(np.median(redness[forehead])) < 0.02
    for key in ("pigmentation", "texture"):              # nothing else changed
        assert abs(np.median(values[key][values["skin"]])) < 0.1 * views.CHANGE_LIMITS[key]
    maps = views.change_maps(before, after, skin, result)
    assert all(m.shape == values["baseline"].shape and m.dtype == np.uint8 for m in maps.values())


def test_photo_maps_are_drawn_on_skin_only(redder_left_cheek):
    from analyzer import views

    img = redder_left_cheek[0].skin_image
    maps = views.photo_maps(img)
    assert set(maps) == {"redness", "pigmentation", "texture"}
    off_skin = ~img.skin
    for m in maps.values():
        assert m.shape == img.srgb.shape and (m[off_skin] == img.srgb[off_skin]).all()
    assert (maps["redness"][img.skin] != img.srgb[img.skin]).any(axis=-1).mean() > 0.5


def test_stored_photo_maps_match_the_analysis(redder_left_cheek):
    """The dashboard redraws a stored photo's maps from its stored summary: the same maps."""
    from analyzer import views
    from analyzer.metrics.maps import summary_maps

    photo = redder_left_cheek[0]
    view = views.FaceView(photo.photo.pixels, photo.face, photo.regions)
    stored = summary_maps(views.stored_skin_image(view, photo.result.to_dict()["summary"]))
    live = summary_maps(photo.skin_image)
    for key, tolerance in (("redness", 0.005), ("pigmentation", 0.02), ("texture", 0.01)):
        assert np.mean(stored[key][stored["skin"]]) == pytest.approx(np.mean(live[key][live["skin"]]),
                                                                     rel=tolerance)
    pictures = views.stored_photo_maps(view, photo.result.to_dict()["summary"])
    assert all(m.dtype == np.uint8 and m.shape[2] == 3 for m in pictures.values())
