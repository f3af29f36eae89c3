# Infrastructure: the Lambda artifact, checkov and Terraform checks (issue 6).
#
# checkov pins many libraries (boto3 among them), so it lives in a virtual environment of its
# own, .venv-tools, where it cannot fight the project's boto3 or moto. The Lambda wheels that
# `make package` downloads (for python3.12 on arm64) are cached there too.
CHECKOV_VERSION := 3.3.30
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
WHEEL_CACHE := $(TOOLS_VENV)/wheels
TERRAFORM ?= terraform
# e.g. TF_INIT_FLAGS=-plugin-dir=/opt/tf-plugins on a machine with a provider mirror.
TF_INIT_FLAGS ?=

EXTRA_INSTALL += $(TOOLS_STAMP)

.PHONY: package checkov tf-fmt tf-validate infra-check

$(TOOLS_STAMP): mk/infra.mk
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $(TOOLS_STAMP)

# dist/lambda.zip, the artifact infra/terraform deploys; the same inputs give the same bytes.
package: $(STAMP)
	$(BIN)/python scripts/package_lambda.py --output dist/lambda.zip --wheel-cache $(WHEEL_CACHE)

checkov: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/checkov --directory infra/terraform --framework terraform --quiet --compact --skip-download

# These two need terraform on the PATH (`make test` does not). validate runs on a copy, so no
# .terraform directory or lock file appears in the repository.
tf-fmt:
	$(TERRAFORM) fmt -check -recursive infra/terraform

tf-validate:
	@tmp=$$(mktemp -d) && mkdir -p $$tmp/infra $$tmp/api \
	&& cp -R infra/terraform $$tmp/infra/terraform && rm -rf $$tmp/infra/terraform/.terraform \
	&& cp api/openapi.yaml $$tmp/api/ \
	&& $(TERRAFORM) -chdir=$$tmp/infra/terraform init -backend=false -input=false $(TF_INIT_FLAGS) >/dev/null \
	&& $(TERRAFORM) -chdir=$$tmp/infra/terraform validate; \
	status=$$?; rm -rf $$tmp; exit $$status

infra-check: tf-fmt tf-validate checkov
