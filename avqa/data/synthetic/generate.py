"""Build the synthetic dataset: scenes, questions, annotation JSONs, scenes.json and the rendered videos.

Everything except the mp4 bytes is a pure function of the arguments: scene i is drawn from
default_rng([seed, i]) and each split's questions from its own generator, so the same arguments give
byte-identical JSON files. The whole out_dir is written under a temporary sibling and renamed at the end.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avqa.atomic import atomic_path
from avqa.data.synthetic.questions import Balancer, candidates, record
from avqa.data.synthetic.render import RenderSettings, render_video
from avqa.data.synthetic.scene import sample_scene
from avqa.data.synthetic.stats import question_only_accuracy

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Plan:
    """What to generate (everything but the rendering settings)."""
    videos: dict[str, int]          # split -> number of videos
    seconds: int
    questions_per_video: int
    instruments: list[str]
    seed: int


def plan_scenes(plan: Plan) -> list[dict]:
    """All scenes, split by split (train, val, test), video ids syn00001, syn00002, ..."""
    scenes = []
    index = 0
    for split in SPLITS:
        for _ in range(plan.videos[split]):
            index += 1
            rng = np.random.default_rng([plan.seed, index])
            scenes.append(sample_scene(rng, f"syn{index:05d}", split, plan.seconds, plan.instruments))
    return scenes


def plan_questions(plan: Plan, scenes: list[dict]) -> dict[str, list[dict]]:
    """split -> annotation records, balanced per split; question ids are unique over all splits."""
    records: dict[str, list[dict]] = {}
    question_id = 0
    for split_index, split in enumerate(SPLITS):
        balancer = Balancer(rng=np.random.default_rng([plan.seed, 10**6 + split_index]))
        records[split] = []
        for scene in (s for s in scenes if s["split"] == split):
            chosen = balancer.pick(candidates(scene, plan.instruments), plan.questions_per_video)
            if len(chosen) < plan.questions_per_video:
                logger.info("%s: only %d well-posed questions", scene["video_id"], len(chosen))
            for q in chosen:
                question_id += 1
                records[split].append(record(scene["video_id"], question_id, q))
    return records


def annotation_json(records: list[dict]) -> str:
    """The MUSIC-AVQA file layout: a JSON list, 2-space indent, ASCII escapes (the real files' "？" is \\uff1f)."""
    return json.dumps(records, indent=2)


def scenes_json(plan: Plan, settings: RenderSettings, scenes: list[dict]) -> str:
    meta = {"seed": plan.seed, "seconds": plan.seconds, "instruments": plan.instruments, **asdict(settings)}
    return json.dumps({"meta": meta, "videos": {s["video_id"]: s for s in scenes}}, indent=1)


def _render_all(scenes: list[dict], videos_dir: Path, settings: RenderSettings, workers: int) -> None:
    videos_dir.mkdir(parents=True)
    jobs = [(scene, videos_dir / f"{scene['video_id']}.mp4") for scene in scenes]
    progress = tqdm(total=len(jobs), desc="render", unit="video", disable=None)
    if workers <= 1:
        for scene, path in jobs:
            render_video(scene, path, settings)
            progress.update()
    else:
        # spawn: the parent may hold torch/OpenMP threads (pytest), which fork would copy in a broken state.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(render_video, scene, path, settings) for scene, path in jobs]
            for future in as_completed(futures):
                future.result()
                progress.update()
    progress.close()


def generate(out_dir: str | Path, plan: Plan, settings: RenderSettings, workers: int = 1) -> dict:
    """Write the dataset to out_dir (atomically); returns a summary (counts, question-only accuracy)."""
    scenes = plan_scenes(plan)
    records = plan_questions(plan, scenes)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for split in SPLITS:
            (tmp / f"avqa-{split}.json").write_text(annotation_json(records[split]))
        (tmp / "scenes.json").write_text(scenes_json(plan, settings, scenes))
        _render_all(scenes, tmp / "videos", settings, workers)
    prior = question_only_accuracy(records["train"], records["test"]).get("overall")
    logger.info("question-only accuracy on test (training majority per template and values): %s",
                "n/a" if prior is None else f"{prior:.1f}%")
    return {
        "videos": dict(plan.videos),
        "questions": {split: len(records[split]) for split in SPLITS},
        "question_only_test_accuracy": prior,
    }
