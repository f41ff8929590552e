"""Prompts for the causal LM, built from the same Grounding the composer uses.

The prompt is two messages: a system message (instructions for the channel, the
facts, the help-center passages, allowed offers) and the customer's redacted message.
They are rendered with the model's chat template when it has one (manifest.json key
`chat_template`, else tokenizer_config.json), or with a plain "Customer:/Assistant:"
template whose stop string keeps the model from writing the customer's next turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.errors import DataError, Unavailable
from server.generation.base import Grounding, PassageRef

PLAIN_STOPS = ("\nCustomer:", "\nAssistant:")
_STYLE = {
    "chat": "Answer in a short, friendly chat message of 2 to 5 sentences.",
    "email": "Answer as a polite email: greeting with the customer's name, short "
    "paragraphs, and a sign-off.",
    "social": "Answer in one or two very short sentences without any personal details "
    "(no names, order numbers, dates or amounts) and invite the customer to send a "
    "direct message.",
}
_RULES = (
    "You are a customer service assistant for an online shop. Use only the facts and "
    "help-center passages below; if they do not answer the question, say that a "
    "colleague can help. Never promise refunds, compensation or delivery dates, and "
    "never mention order numbers that are not in the facts."
)


def system_message(g: Grounding, passages: int | None = None) -> str:
    """Instructions, facts, passages and offers as one system message.

    `passages` limits how many passages (best score first) are included, so a caller
    can shrink the prompt to fit the model's context.
    """
    parts = [_RULES, _STYLE.get(g.channel, _STYLE["chat"])]
    if g.customer_name:
        parts.append(f"Customer name: {g.customer_name}")
    parts.append(f"Topic: {g.intent.replace('_', ' ')}")
    if g.facts:
        parts.append("Facts:\n" + "\n".join(f"- [{f.source_id}] {f.text}" for f in g.facts))
    ranked = ranked_passages(g, passages)
    if ranked:
        parts.append(
            "Help center:\n"
            + "\n".join(f"- [{p.source_id}] {p.title}: {' '.join(p.text.split())}" for p in ranked)
        )
    if g.offers:
        parts.append(
            "You may suggest:\n" + "\n".join(f"- {o.title} ({o.reason})" for o in g.offers)
        )
    return "\n\n".join(parts)


def ranked_passages(g: Grounding, limit: int | None = None) -> list[PassageRef]:
    """The passages a prompt includes: best score first, ties by id, at most `limit`."""
    ranked = sorted(g.passages, key=lambda p: (-p.score, p.id))
    return ranked if limit is None else ranked[:limit]


def cited_sources(
    g: Grounding, passages: int | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(source ids, source kinds) of the facts and the passages a prompt includes."""
    pairs = [(f.source_id, f.source_kind) for f in g.facts]
    pairs += [(p.source_id, p.kind) for p in ranked_passages(g, passages)]
    ids = tuple(dict.fromkeys(i for i, _ in pairs))
    kinds = tuple(dict.fromkeys(k for _, k in pairs))
    return ids, kinds


class PromptBuilder:
    """Renders messages for one model: its chat template, or the plain template."""

    def __init__(self, chat_template: str | None = None, special: dict[str, str] | None = None):
        self.chat_template = chat_template
        self._special = dict(special or {})
        self._compiled: Any = None
        if chat_template:
            self._compiled = _compile(chat_template)

    @classmethod
    def for_model(cls, model_dir: Path, manifest: dict[str, Any]) -> PromptBuilder:
        """The template named by the manifest, else the tokenizer config's, else plain."""
        template = manifest.get("chat_template")
        special: dict[str, str] = {}
        config_path = model_dir / "tokenizer_config.json"
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{config_path}: unreadable tokenizer config ({exc})") from exc
            template = template or _pick_template(config.get("chat_template"))
            for key in ("bos_token", "eos_token"):
                value = config.get(key)
                value = value.get("content") if isinstance(value, dict) else value
                if isinstance(value, str):
                    special[key] = value
        return cls(template if isinstance(template, str) and template else None, special)

    @property
    def uses_chat_template(self) -> bool:
        return self._compiled is not None

    @property
    def stops(self) -> Sequence[str]:
        """Stop strings the template needs (the plain one must not write the next turn)."""
        return () if self.uses_chat_template else PLAIN_STOPS

    def render(self, g: Grounding, passages: int | None = None) -> str:
        """The full prompt text, ending where the assistant's answer starts."""
        system = system_message(g, passages)
        if self._compiled is None:
            return f"{system}\n\nCustomer: {g.message.strip()}\nAssistant:"
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": g.message.strip()},
        ]
        return str(
            self._compiled.render(messages=messages, add_generation_prompt=True, **self._special)
        )


def _pick_template(value: object) -> str | None:
    # tokenizer_config.json holds one template, or a list of named ones.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        default = named.get("default")
        return default if isinstance(default, str) else None
    return None


def _compile(template: str) -> Any:
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # jinja2 is only needed by models that ship a template
        raise Unavailable("this model has a chat template; rendering it needs jinja2") from exc

    def raise_exception(message: str) -> None:
        raise DataError(f"chat template error: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template)
    except TemplateError as exc:
        raise DataError(f"chat template does not compile: {exc}") from exc
