#include "common/json_writer.hpp"
