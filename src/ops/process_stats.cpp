#include "ops/process_stats.hpp"
