"""Versioned prompt templates, one file per stage and version (``prompts/<stage>.v<N>.txt``).

A template has a ``## system`` and a ``## user`` part; ``$name`` placeholders are filled from the stage's
inputs, and ``$input`` becomes the inputs as a fenced JSON block. The system part starts with a task id
(``cre-synth/<stage>@v<N>``) so that a reader of the messages (the ``rules`` generator, a cache inspector)
knows which stage and version wrote them.

Example:
    >>> from train.synth.prompts import load_prompt, parse_task
    >>> prompt = load_prompt("paraphrase")
    >>> messages = prompt.render({"title": "Nurse", "text": "We need a nurse."})
    >>> parse_task(messages)[:2]
    ('paraphrase', 'v1')
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).parent / "prompts"
_TASK_ID = re.compile(r"Task id: cre-synth/(\w+)@(v\d+)")
_INPUT_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


@dataclass(frozen=True)
class PromptTemplate:
    """A stage's chat prompt at one version."""

    stage: str
    version: str
    system: str
    user: str

    @property
    def id(self) -> str:
        return f"{self.stage}@{self.version}"

    def render(self, inputs: dict, **placeholders: object) -> list[dict]:
        """Chat messages for ``inputs`` (shown as JSON) and any extra ``$placeholders``."""
        fields = {
            key: value if isinstance(value, str | int | float) else json.dumps(value, ensure_ascii=False)
            for key, value in inputs.items()
        }
        fields.update({key: str(value) for key, value in placeholders.items()})
        fields["input"] = "```json\n" + json.dumps(inputs, ensure_ascii=False, indent=1) + "\n```"
        return [
            {"role": "system", "content": Template(self.system).safe_substitute(fields)},
            {"role": "user", "content": Template(self.user).safe_substitute(fields)},
        ]


@functools.cache
def load_prompt(stage: str, version: str | None = None) -> PromptTemplate:
    """Read a stage's template; ``version=None`` takes the highest version on disk."""
    candidates = sorted(PROMPT_DIR.glob(f"{stage}.v*.txt"), key=lambda p: int(p.stem.rsplit(".v", 1)[1]))
    if version is not None:
        candidates = [p for p in candidates if p.stem.endswith(f".{version}")]
    if not candidates:
        raise FileNotFoundError(
            f"no prompt template for stage {stage!r} (version {version or 'latest'}) in {PROMPT_DIR}"
        )
    path = candidates[-1]
    text = path.read_text(encoding="utf-8")
    match = re.fullmatch(r"## system\n(.*?)\n## user\n(.*)", text.strip(), re.DOTALL)
    if match is None:
        raise ValueError(f"{path}: expected a '## system' part followed by a '## user' part")
    return PromptTemplate(
        stage=stage, version=path.stem.rsplit(".", 1)[1], system=match.group(1), user=match.group(2)
    )


def parse_task(messages: list[dict]) -> tuple[str, str, dict]:
    """Recover ``(stage, version, inputs)`` from messages rendered by :meth:`PromptTemplate.render`."""
    text = "\n".join(message.get("content", "") for message in messages)
    task = _TASK_ID.search(text)
    blocks = _INPUT_BLOCK.findall(text)
    if task is None or not blocks:
        raise ValueError("messages carry no cre-synth task id and JSON input block")
    return task.group(1), task.group(2), json.loads(blocks[-1])
