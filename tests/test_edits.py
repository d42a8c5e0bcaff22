from gpo_core.optimizer.edits import word_diff, word_edit_distance


def test_edit_distance_counts_words_not_characters():
    assert word_edit_distance("Let's think step by step.", "Let's think step by step.") == 0
    assert word_edit_distance("Let's think step by step.", "Let us think step by step.") == 2  # 1 sub + 1 insert
    assert word_edit_distance("a b c", "a x c") == 1
    assert word_edit_distance("", "one two three") == 3


def test_diff_reconstructs_both_sides():
    old, new = "Let's think step by step.", "First, let's think step by step carefully."
    segs = word_diff(old, new)
    assert " ".join(s.text for s in segs if s.op in ("equal", "delete")) == old
    assert " ".join(s.text for s in segs if s.op in ("equal", "insert")) == new
    assert {s.op for s in segs} >= {"equal", "insert"}
