"""What the app shows, built from run records, as plain strings and pandas DataFrames.

No Streamlit here: the pages pass these to ``st.dataframe`` / ``st.markdown``.

- :mod:`.markup`: safe Markdown (every piece of user text is escaped), word diffs,
  percentages and progress lines.
- :mod:`.setup_view`: the next run's setup: an upload preview, the task, the split, the models.
- :mod:`.step_view`: one optimization step: update direction, candidates, decision.
- :mod:`.run_view`: a whole run: path, trajectory, steps, per-example results, saved runs.
"""
