"""The synthesis's text generators: the chat clients of :mod:`common.chat` plus the offline ``rules``.

Backends:
    ``openai``, ``local``: :class:`common.chat.OpenAIChatGenerator`, :class:`common.chat.LocalChatGenerator`.
    ``rules``: the deterministic offline generator (:class:`train.synth.rules.RulesGenerator`).

Example:
    >>> get_generator("rules").name
    'rules'
"""

from __future__ import annotations

from common import chat
from train.synth.rules import RulesGenerator

GENERATORS = {**chat.CHAT_GENERATORS, "rules": RulesGenerator}


def get_generator(name: str, **kwargs):
    """Build a generator by backend name (``openai``, ``local`` or ``rules``) with backend-specific options."""
    return chat.get_generator(name, GENERATORS, **kwargs)
