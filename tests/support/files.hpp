// Small file helpers for the C++ tests: a file's bytes, a file written, its
// mode, a directory's names. Failures throw (Catch reports them), so that a
// helper never passes a test by reading nothing.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

namespace test_support {

inline std::string slurp(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

inline void spit(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary);
	out << text;
	if (!out.flush())
		throw std::runtime_error("cannot write " + path);
}

// The permission bits of path.
inline unsigned mode_of(const std::string &path)
{
	struct stat st;
	if (::stat(path.c_str(), &st) != 0)
		throw std::runtime_error("cannot stat " + path);
	return st.st_mode & 07777;
}

// The names in dir, without "." and "..".
inline std::set<std::string> entries(const std::string &dir)
{
	std::set<std::string> out;
	DIR *d = ::opendir(dir.c_str());
	if (!d)
		throw std::runtime_error("cannot open " + dir);
	while (const struct dirent *e = ::readdir(d))
		if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
			out.insert(e->d_name);
	::closedir(d);
	return out;
}

} // namespace test_support
