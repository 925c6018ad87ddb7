"""Assessment stage: classical measures (`iqms`), body masks (`masks`), salient slices (`slices`).

Submodules are imported on demand so that `import medq.assess` stays light (no model code).
"""
