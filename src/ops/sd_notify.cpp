#include "ops/sd_notify.hpp"
