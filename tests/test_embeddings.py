import numpy as np
import pytest

from gpo_core.models.embeddings import CachedEmbedder, SentenceTransformerEmbedder
from gpo_core.optimizer.direction import TrajectoryEntry, select_update_direction
from gpo_testkit.embedders import HashingEmbedder


def test_cached_embedder_embeds_each_text_once():
    inner = HashingEmbedder()
    emb = CachedEmbedder(inner)
    emb.embed(["a b", "c d"])
    v = emb.embed(["c d", "a b", "e f"])
    assert inner.texts_embedded == 3 and v.shape == (3, inner.dim)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)


@pytest.fixture(scope="module")
def minilm():
    return CachedEmbedder(SentenceTransformerEmbedder())


@pytest.mark.real_model
def test_real_minilm_loads_offline_and_ranks_paraphrases_first(minilm):
    vecs = minilm.embed(["Let's think step by step."])
    assert vecs.shape == (1, 384) and abs(float(np.linalg.norm(vecs[0])) - 1) < 1e-4
    entries = [TrajectoryEntry(0, "Translate the sentence into French.", 0.3, 0),
               TrajectoryEntry(1, "Let us reason through this one step at a time.", 0.5, 1),
               TrajectoryEntry(2, "Output only the final number.", 0.4, 2),
               TrajectoryEntry(3, "Answer yes or no.", 0.2, 3)]
    got = select_update_direction(entries, "Let's think step by step.", k=2, strategy="relevance",
                                  embedder=minilm, newest_id=3, pool="all")
    assert {r.entry_id for r in got} == {3, 1}   # newest + the paraphrase, not the unrelated ones
    sims = {r.entry_id: r.similarity for r in got}
    assert sims[1] > 0.5 > sims[3]
