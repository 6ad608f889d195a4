"""What builds and checks the study: the notebook runner, JupyterLab, the screenshot."""
