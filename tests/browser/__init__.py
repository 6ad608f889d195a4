"""Browser tests: JupyterLab in headless Chromium (``make browser-test``)."""
