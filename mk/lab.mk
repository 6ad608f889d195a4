# JupyterLab: `make lab` for people (tools/lab.py); `make screenshot` (tools/screenshot.py) and
# `make browser-test` (tests/browser/) drive it in Debian's headless Chromium through playwright.
CHROMIUM := /usr/bin/chromium

.PHONY: lab browser-test screenshot

lab: $(STAMP) ## Start JupyterLab on notebooks/ (loopback, token; EDIT=1 lets it save over the study's notebooks)
	@$(PY) -m tools.lab $(if $(EDIT),--edit)

browser-test: $(DEV_STAMP) | $(CHROMIUM) ## Run every notebook with Run All in JupyterLab, headless, on the fixture
	@$(VENV)/bin/pytest -m browser tests/browser

screenshot: $(DEV_STAMP) | $(CHROMIUM) ## Redraw readme_images/jupyter_notebook_location.png, draw_a_digit.png and threshold_explorer.png (full data)
	@$(PY) -m tools.screenshot

# Playwright cannot download its browsers here: use Debian's chromium package (installed as root).
$(CHROMIUM):
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "error: $(CHROMIUM) is missing; install it with: sudo apt-get install chromium" >&2; exit 1; fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
