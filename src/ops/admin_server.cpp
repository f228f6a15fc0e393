#include "ops/admin_server.hpp"
