#include "ops/access_log.hpp"
