"""The job's training loop outside Celery, for multi-GPU launchers:

    python manage.py training_spec <job-uuid> > spec.json
    accelerate launch --num_processes 8 -m training.finetune.launch spec.json     # DDP
    accelerate launch --config_file fsdp.yaml -m training.finetune.launch spec.json  # FSDP / DeepSpeed

Trainer reads the distributed environment the launcher sets; every rank runs the same spec, rank 0
saves. The spec holds the rows themselves, so no database is needed on the GPU nodes."""

from __future__ import annotations

import json
import os
import sys

from .runner import RunSpec, run_fine_tune


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    with open(args[0], encoding="utf-8") as handle:
        spec = RunSpec(**json.load(handle))
    result = run_fine_tune(spec)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"status": result.status, "model_dir": result.model_dir, "metrics": result.metrics}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
