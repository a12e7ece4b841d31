"""check_environment: a report a learner can paste into a bug report."""

from importlib import metadata

import torch

import lessons
from lessons import data
from lessons.environment import check_environment


def test_report_lists_versions_device_and_data():
    report = check_environment()
    assert report.packages["torch"] == metadata.version("torch")
    assert report.packages["ipywidgets"] == metadata.version("ipywidgets")
    assert report.lessons == lessons.__version__
    assert report.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert report.data_ok and report.ok
    assert str(data.cache_dir()) in report.data_message
    text = str(report)
    assert f"torch        {metadata.version('torch')}" in text
    assert text.endswith("everything looks fine")


def test_report_names_missing_data(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "bundled_files", lambda: {"wikipedia": tmp_path / "missing.bz2"})
    report = check_environment()
    assert not report.ok and not report.data_ok
    assert "missing bundled files: wikipedia" in str(report)


def test_report_says_when_the_device_is_overridden(monkeypatch):
    monkeypatch.setenv("LESSONS_DEVICE", "cpu")
    assert check_environment().device == "cpu (set by LESSONS_DEVICE)"


def test_report_survives_a_broken_check(monkeypatch):
    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data, "cache_dir", broken)
    report = check_environment()
    assert "disk on fire" in report.data_message and not report.ok
