// ringtun-man: writes a program's manual page (help_text.hpp) to a file, for the build's custom_target. Not
// installed. Usage: ringtun-man gateway|agent OUTPUT
#include <cstdio>
#include <string>
#include <string_view>

#include "app/help_text.hpp"

int main(int argc, char** argv) {
  using ringtun::app::detail::Program;
  if (argc != 3 || (std::string_view(argv[1]) != "gateway" && std::string_view(argv[1]) != "agent")) {
    std::fprintf(stderr, "usage: ringtun-man gateway|agent OUTPUT\n");
    return 2;
  }
  const std::string page =
      ringtun::app::detail::man_page(std::string_view(argv[1]) == "gateway" ? Program::kGateway : Program::kAgent);
  std::FILE* file = std::fopen(argv[2], "w");
  if (file == nullptr) {
    std::perror(argv[2]);
    return 1;
  }
  const bool written = std::fwrite(page.data(), 1, page.size(), file) == page.size();
  if (std::fclose(file) != 0 || !written) {
    std::perror(argv[2]);
    return 1;
  }
  return 0;
}
