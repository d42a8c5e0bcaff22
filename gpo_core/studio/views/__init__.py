"""What the app shows, built from run records, as plain strings and pandas DataFrames.

No Streamlit here: the pages pass these to ``st.dataframe`` / ``st.markdown``.

- :mod:`.markup`: safe Markdown (every piece of user text is escaped), word diffs,
  percentages and progress lines.
- :mod:`.setup_view`: the next run's setup: an upload preview, the task, the split, the models.
- :mod:`.step_view`: one optimization step: update direction, candidates, decision.
- :mod:`.run_view`: a whole run: path, trajectory, steps, per-example results, saved runs.
- :mod:`.uncertainty`: every accuracy with its counts and 95% Wilson interval (issue 11).
- :mod:`.paired_view`: a candidate against the current prompt: fixed, broken, McNemar p, the
  accept-anyway question and the per-example regression view.
- :mod:`.cost_view`: the cost estimate, the spend meter, the calls racing saved.
"""
