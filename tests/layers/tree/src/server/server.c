/* A fixture: server/ includes every layer below it. */
#include "otlp/otlp.h"
#include "dialect/openai.h"
#include "config/config.h"
