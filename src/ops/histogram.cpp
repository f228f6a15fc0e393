#include "ops/histogram.hpp"
