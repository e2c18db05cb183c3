/*
 * Device tables filled from C99, as an integrator writing its own devices in
 * C would: a fixed clock and a printer that counts lines. test_check.cpp
 * hands them to loy_hal_check() and calls them through the tables.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loyalty/hal.h"

struct c_printer {
	int lines;
	int flushes;
};

static int64_t c_wall_ms(void *ctx)
{
	return *(const int64_t *)ctx;
}

static int64_t c_monotonic_ms(void *ctx)
{
	(void)ctx;
	return 42;
}

static int c_print_line(void *ctx, const char *line)
{
	struct c_printer *p = (struct c_printer *)ctx;
	if (line == NULL || strchr(line, '\n') != NULL)
		return LOY_HAL_E_ARGUMENT;
	p->lines++;
	return 0;
}

static int c_flush(void *ctx)
{
	((struct c_printer *)ctx)->flushes++;
	return 0;
}

static int64_t c_now = 1767225600000;
static struct c_printer c_state;
static loy_hal_clock c_clock;
static loy_hal_printer c_printer_table;

/* Fills `hal` with a clock and a printer made here, and no other device. */
void hal_test_c_tables(loy_hal *hal)
{
	c_clock.version = LOY_HAL_CLOCK_VERSION;
	c_clock.wall_ms = c_wall_ms;
	c_clock.monotonic_ms = c_monotonic_ms;
	c_clock.ctx = &c_now;

	memset(&c_state, 0, sizeof c_state);
	c_printer_table.version = LOY_HAL_PRINTER_VERSION;
	c_printer_table.print_line = c_print_line;
	c_printer_table.flush = c_flush;
	c_printer_table.ctx = &c_state;

	memset(hal, 0, sizeof *hal);
	hal->version = LOY_HAL_VERSION;
	hal->clock = &c_clock;
	hal->printer = &c_printer_table;
}

/* Lines and flushes the C printer saw. */
int hal_test_c_printed(int *flushes)
{
	*flushes = c_state.flushes;
	return c_state.lines;
}
