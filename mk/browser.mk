# The browser test (tests/e2e/test_patient_page_browser.py): Debian's chromium and the Python
# playwright package, never Playwright's own browser download. The script is idempotent and
# takes well under a second once done, so it runs on every install rather than behind a stamp
# that would miss a chromium removed or installed since.
.PHONY: install-browser

EXTRA_INSTALL += install-browser

install-browser: $(STAMP)
	scripts/install-browser.sh
