"""Reproduce Table 1: `python -m hved_tf.evaluate --model M [--model M2 ...] --out_dir O`;
models averaged as one (`--ensemble NAME=M1,M2,M3`); segmentation files of any tool
(`--predictions DIR --data_root D`).

Every subject of a split, every modality subset, every model: Dice, HD95, sensitivity,
specificity, and PSNR/SSIM of the synthesised sequences; `results.csv`, `summary.json`,
`table1.md` and figures. What exactly: `hved_tf.evaluation.app`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
from hved_tf.cli import Program
from hved_tf.config import EvaluateConfig
from hved_tf.evaluation.app import run_evaluation


def run(config):
    markdown = run_evaluation(config, log=lambda line: print(line, flush=True))
    print(markdown, flush=True)
    print(f"wrote {config.out_dir}/results.csv, summary.json, table1.md, table1.png "
          "(and synthesis.md when sequences were synthesised)", flush=True)


PROGRAM = Program(EvaluateConfig, run, name="evaluate", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
