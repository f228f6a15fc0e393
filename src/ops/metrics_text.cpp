#include "ops/metrics_text.hpp"
