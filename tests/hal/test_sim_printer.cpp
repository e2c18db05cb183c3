// The capturing printer through its C table: lines kept and grouped into
// receipts by flush, cleared, lines a printer must refuse, and paper running
// out.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "hal/sim/sim.hpp"

using loy::hal::sim::SimPrinter;
using Lines = std::vector<std::string>;

namespace {
int print(const loy_hal_printer *p, const std::string &line)
{
	return p->print_line(p->ctx, line.c_str());
}
int flush(const loy_hal_printer *p) { return p->flush(p->ctx); }
} // namespace

TEST_CASE("sim printer: captures lines and receipts")
{
	SimPrinter printer;
	const loy_hal_printer *p = printer.table();
	CHECK(p->version == LOY_HAL_PRINTER_VERSION);
	CHECK(print(p, "Cafe Rewards") == 0);
	CHECK(print(p, "Card ****7895") == 0);
	CHECK(print(p, "") == 0); // a blank line is a line
	CHECK(flush(p) == 0);
	CHECK(print(p, "Earned 13 points") == 0);
	CHECK(printer.lines() == Lines{"Cafe Rewards", "Card ****7895", "", "Earned 13 points"});
	CHECK(printer.unflushed() == Lines{"Earned 13 points"});
	CHECK(printer.receipts() ==
	      std::vector<Lines>{{"Cafe Rewards", "Card ****7895", ""}});
	CHECK(flush(p) == 0);
	CHECK(flush(p) == 0); // an empty receipt
	CHECK(printer.flushes() == 3);
	CHECK(printer.receipts().back().empty());
	CHECK(printer.unflushed().empty());
	printer.clear();
	CHECK(printer.lines().empty());
	CHECK(printer.flushes() == 0);
}

TEST_CASE("sim printer: lines a printer refuses")
{
	SimPrinter printer;
	const loy_hal_printer *p = printer.table();
	CHECK(p->print_line(p->ctx, nullptr) == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, "two\nlines") == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, "carriage\rreturn") == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, "trailing newline\n") == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, std::string(LOY_HAL_LINE_MAX, 'x')) == LOY_HAL_E_ARGUMENT);
	CHECK(printer.lines().empty());
	CHECK(print(p, std::string(LOY_HAL_LINE_MAX - 1, 'x')) == 0);
	CHECK(print(p, "Total EUR 13.50 \xe2\x82\xac") == 0); // UTF-8 passes
	CHECK(printer.lines().size() == 2);
}

TEST_CASE("sim printer: out of paper")
{
	SimPrinter printer;
	const loy_hal_printer *p = printer.table();
	printer.fail_next(2);
	CHECK(print(p, "lost") == LOY_HAL_E_IO);
	CHECK(flush(p) == LOY_HAL_E_IO);
	CHECK(print(p, "kept") == 0);
	CHECK(flush(p) == 0);
	CHECK(printer.receipts() == std::vector<Lines>{{"kept"}});
}
