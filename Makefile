# sessiongate — build, run and test.
#   make run     the demo gateway (Caddyfile.example)
#   make test    everything CI runs: format, vet, layering, lint, all tests with -race
#   make lint    staticcheck and gosec (pinned, from the Go module proxy); part of make test
#   make vulncheck  govulncheck against GOVULNDB (needs the vulnerability database; not part of make test)
#   make fuzz    every fuzz target for FUZZTIME each (not part of make test)
#   make bench   the gateway against plain reverse_proxy, side by side (not part of make test)

GO       ?= go
FUZZTIME ?= 60s

# Static analysers, pinned so a new release cannot change the verdict of an
# unchanged tree. They are built from the Go module proxy into bin/tools.
STATICCHECK_VERSION ?= v0.8.2
GOSEC_VERSION       ?= v2.30.0
GOVULNCHECK_VERSION ?= v1.9.0
TOOLS   := $(CURDIR)/bin/tools
# The vulnerability database govulncheck reads: vuln.go.dev, or a mirror of
# it (file:///path/to/vulndb) where that is out of reach.
GOVULNDB ?= https://vuln.go.dev

.PHONY: all build run test deps fmt-check vet layering sec21 lint tools nosec-reasons vulncheck fuzz bench clean

all: build

build:
	$(GO) build -o bin/caddy ./xcaddy

run:
	$(GO) run ./xcaddy run --config Caddyfile.example

test: fmt-check vet layering sec21 lint deps
	$(GO) test -race -count=1 -timeout 20m ./...

# The redis store's tests start their own redis-server on a free loopback
# port; install Debian's package when the binary is missing.
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server (Debian package)"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The engine must never import Caddy (it is embeddable and testable alone).
layering:
	@if $(GO) list -deps ./caddyauth/... | grep -q '^github.com/caddyserver/'; then \
		echo "caddyauth/ imports Caddy:"; $(GO) list -deps ./caddyauth/... | grep '^github.com/caddyserver/'; exit 1; fi

# SEC-21: MACs, signatures and digests are compared in constant time only
# (hmac.Equal, subtle.ConstantTimeCompare). The files that compare them must
# not use bytes.Equal or == on converted strings, except on a line that says
# why it compares no secret ("SEC-21 exempt: <reason>").
SEC21_FILES = caddyauth/sign/amatino.go caddyauth/sign/rfc9421/key.go caddyauth/sign/rfc9421/digest.go \
	caddyauth/dialect/amatino/verify.go caddyauth/dialect/native/verify.go caddyauth/dialect/videntity/verify.go \
	caddyauth/tokens.go caddyauth/seal.go
sec21:
	@if grep -nE 'bytes\.Equal\(|string\([a-zA-Z_.]+\) *== *string\(' $(SEC21_FILES) | grep -v 'SEC-21 exempt: [^ ]'; then \
		echo "SEC-21: compare MACs, signatures and digests with hmac.Equal or subtle.ConstantTimeCompare"; exit 1; fi

# SEC-49: staticcheck on everything, gosec on the code that ships (caddyauth,
# plugin, xcaddy); e2e/ holds the tests and the benchmark program, which start
# processes and write reports by design. Zero findings, except where a
# `#nosec Gnnn -- reason` comment waives one, and every waiver names its rule
# and gives its reason (nosec-reasons).
lint: tools nosec-reasons
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/gosec -quiet -exclude-dir=e2e ./...

tools:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION)

nosec-reasons:
	@bad=$$(grep -rn --include='*.go' '#nosec' . | grep -vE '#nosec G[0-9]{3}( G[0-9]{3})* -- [^ ]' || true); \
	if [ -n "$$bad" ]; then echo "each #nosec must name its rule and give a reason (#nosec G115 -- why):"; echo "$$bad"; exit 1; fi

# SEC-48: no known-vulnerable symbol our code calls. Needs GOVULNDB reachable.
vulncheck:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	$(TOOLS)/govulncheck -db $(GOVULNDB) ./...

# Each fuzz target runs alone (go test allows one -fuzz pattern per package).
FUZZ_TARGETS = \
	./caddyauth/password:FuzzParse \
	./caddyauth/sign:FuzzDecodeSignature \
	./caddyauth/sign:FuzzParseTimestamp \
	./caddyauth/sign:FuzzPythonCompactJSON \
	./caddyauth/store/bolt:FuzzDecodeSession \
	./caddyauth/store/bolt:FuzzDecodeUser \
	./caddyauth/sign/rfc9421:FuzzSignatureInput \
	./caddyauth/sign/rfc9421:FuzzSignature \
	./caddyauth/sign/rfc9421:FuzzContentDigest \
	./caddyauth/sign/rfc9421:FuzzVerify \
	./caddyauth/sign/rfc9421:FuzzSignVerify \
	./caddyauth/dialect/sxt:FuzzLoginBodies \
	./caddyauth/dialect/sxt:FuzzAuthorization \
	./caddyauth/dialect/native:FuzzVerify \
	./caddyauth:FuzzParsePublicKeyBase64 \
	./caddyauth/sign:FuzzSearch \
	./caddyauth/sign:FuzzMatcher \
	./caddyauth/dialect/amatino:FuzzLogin \
	./caddyauth/dialect/amatino:FuzzVerifyHeaders \
	./caddyauth/dialect/videntity:FuzzLoginForm \
	./caddyauth/dialect/videntity:FuzzProxiedKey \
	./plugin:FuzzCaddyfile \
	./plugin:FuzzAdminCreateUser \
	./plugin:FuzzHasHeaderPrefix

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

bench:
	$(GO) run ./e2e/bench -out e2e/bench/results

clean:
	rm -rf bin
