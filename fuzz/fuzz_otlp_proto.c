/*
 * libFuzzer driver for the OTLP/protobuf ingest parser: the same promises as
 * fuzz_otlp_json.c (see there), on protobuf bodies.  The seeds in
 * fuzz/corpus/fuzz_otlp_proto/ are the JSON fixtures of tests/fixtures/otlp/
 * re-encoded by the protobuf encoder in tests/integration/otlp.test.mjs.
 */
#define OTLP_FUZZ_FORMAT GYRE_OTLP_PROTOBUF
#include "fuzz_otlp_json.c"
