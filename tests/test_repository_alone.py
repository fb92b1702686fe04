"""A clone of the repository passes its tests with nothing beside it."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_that_reads_a_file_beside_the_checkout_fails(tmp_path):
    with pytest.raises(PermissionError, match="inside the repository"):
        (ROOT.parent / "shared" / "data" / "README.md").read_text()


def test_every_data_file_a_test_reads_is_kept_with_the_tests(data_dir):
    assert data_dir.is_relative_to(ROOT)
    for name in ("china/chongqing_districts.geojson", "china/beijing_districts.geojson",
                 "chicago_community_areas/Chicago77.shp", "nyc_boroughs/nybb_16a.zip",
                 "open311_bloomington_services.json", "open311_bloomington_service_69.json"):
        assert (data_dir / name).stat().st_size > 0, name
