# intelmq-rs: the two commands of the README, and what they need.
#   make run   - build, then run the default pipeline on the shipped sample feeds (offline)
#   make test  - build, then run the whole test suite
# Both install the build prerequisites (libclang for the rocksdb crate, protoc for tonic) with
# apt-get when they are missing.

CARGO ?= cargo
# One persistent build directory outside the clone, so RocksDB is not rebuilt for every clone.
CARGO_TARGET_DIR ?= /var/tmp/intelmq-rs-target
export CARGO_TARGET_DIR
DEMO_ROOT ?= $(CURDIR)/demo-root
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test deps pydeps build clean-demo

# libclang itself is checked, not libclang-cpp (which other packages bring; bindgen cannot use it).
deps:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* /usr/lib/*-linux-gnu/libclang.so* \
		/usr/lib/*-linux-gnu/libclang-[0-9]*.so* 2>/dev/null | grep -q . || missing="$$missing libclang-dev"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	command -v rsync >/dev/null 2>&1 || missing="$$missing rsync"; \
	if [ -n "$$missing" ]; then \
		echo "make: installing build prerequisites:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The gRPC test from a non-Rust client needs Python's grpcio and grpcio-tools.
pydeps:
	@if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import grpc, grpc_tools' 2>/dev/null; then \
		echo "make: installing grpcio and grpcio-tools for the Python gRPC test"; \
		python3 -m pip install -q grpcio grpcio-tools 2>/dev/null \
		|| (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-grpcio python3-grpc-tools); \
	fi

build: deps
	$(CARGO) build --release --workspace --bins

run: build
	rm -rf "$(DEMO_ROOT)" && mkdir -p "$(DEMO_ROOT)" && cp -r etc "$(DEMO_ROOT)/etc"
	"$(CARGO_TARGET_DIR)/release/intelmq-node" --root "$(DEMO_ROOT)" --until-idle

test: deps pydeps
	$(CARGO) build --release --workspace --bins
	$(CARGO) test --release --workspace --no-fail-fast
	@# The conformance summaries (`conformance: N passed, M failed`) for the record.
	$(CARGO) test --release -p intelmq-tests --test conformance_parsers --test conformance_experts \
		--test conformance_outputs -- --nocapture 2>&1 | grep -E 'conformance.*(passed|not implemented|skipped)' || true

clean-demo:
	rm -rf "$(DEMO_ROOT)"
