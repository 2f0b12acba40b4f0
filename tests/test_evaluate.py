import csv

import numpy as np
import pytest

from srredsim.classical import reconstruct
from srredsim.cli import main
from srredsim.evaluate import comparison_figure, markdown_table, score_images, write_table
from srredsim.simulate import SimulationConfig, simulate_stack
from srredsim.tiff import write_sr_image, write_tiff


@pytest.fixture(scope="module")
def sim():
    cfg = SimulationConfig(size=128, photons=200.0)
    st = simulate_stack(cfg, seed=0, targets=["truth"])
    rec = reconstruct(st.raw, cfg.optics)
    return st, rec


def test_score_images_rows_and_order(sim):
    st, rec = sim
    rows = score_images(st.truth, {"widefield": rec.widefield, "classical": rec.sr}, pixel_size_um=0.04)
    assert [r["name"] for r in rows] == ["widefield", "classical"]
    wf, cl = rows
    assert cl["psnr"] > wf["psnr"] and cl["ssim"] > wf["ssim"] and cl["nrmse"] < wf["nrmse"]
    assert cl["frc_resolution_nm"] < wf["frc_resolution_nm"]
    md = markdown_table(rows)
    assert md.splitlines()[0].startswith("| name | psnr | ssim | nrmse")
    assert len(md.splitlines()) == 4


def test_write_table_and_figure(sim, tmp_path):
    st, rec = sim
    rows = score_images(st.truth, {"widefield": rec.widefield[::2, ::2], "classical": rec.sr})
    write_table(rows, tmp_path / "m.csv", tmp_path / "m.md")
    with open(tmp_path / "m.csv") as fh:
        read = list(csv.DictReader(fh))
    assert [r["name"] for r in read] == ["widefield", "classical"]
    assert float(read[1]["psnr"]) == pytest.approx(rows[1]["psnr"])
    png = comparison_figure(st.truth, {"widefield": rec.widefield, "classical": rec.sr}, tmp_path / "fig.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_evaluate(sim, tmp_path, capsys):
    st, rec = sim
    truth = write_sr_image(tmp_path / "truth.tif", st.truth, raw_pixel_size_um=0.08)
    wf = write_sr_image(tmp_path / "wf.tif", rec.widefield, raw_pixel_size_um=0.08)
    sr = write_sr_image(tmp_path / "sr.tif", rec.sr, raw_pixel_size_um=0.08)
    out = tmp_path / "eval"
    assert main(["evaluate", str(truth), f"widefield={wf}", str(sr), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| widefield |" in printed and "| sr |" in printed
    assert (out / "metrics.csv").exists() and (out / "metrics.md").exists() and (out / "comparison.png").exists()
    # errors: missing file, shape mismatch; one line, exit 2
    assert main(["evaluate", str(truth), str(tmp_path / "nope.tif"), "-o", str(out)]) == 2
    bad = write_tiff(tmp_path / "bad.tif", np.ones((100, 90), np.float32))
    capsys.readouterr()
    assert main(["evaluate", str(truth), str(bad), "-o", str(tmp_path / "e2"), "--no-figure"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad" in err and err.count("\n") == 0
