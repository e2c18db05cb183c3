// Card scan parsing, check digits and masking.
#include "core/card.hpp"

#include <fmt/format.h>

namespace loy {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Status bad(std::string_view why) { return Status(Code::bad_card, fmt::format("card: {}", why)); }

} // namespace

Result<std::string> card_digits(std::string_view scan)
{
	if (scan.size() > scan_chars_max)
		return bad(fmt::format("scan is {} characters, at most {} allowed", scan.size(),
				       scan_chars_max));
	// Readers often end a scan with a line ending.
	while (!scan.empty() && (scan.back() == '\n' || scan.back() == '\r'))
		scan.remove_suffix(1);
	if (scan.empty())
		return bad("scan is empty");

	std::string digits;
	const std::string_view qr = "LOYALTY:";
	if (scan.front() == ';') {
		// Track 2: ;PAN=YYMM...? with an optional LRC after the end sentinel.
		size_t sep = scan.find('=');
		if (sep == std::string_view::npos)
			return bad("track 2 has no '=' after the card number");
		for (size_t i = 1; i < sep; i++) {
			if (!is_digit(scan[i]))
				return bad("track 2 card number holds a non-digit");
			digits += scan[i];
		}
		size_t end = scan.find('?', sep);
		if (end == std::string_view::npos)
			return bad("track 2 has no end sentinel '?'");
		if (end + 2 < scan.size())
			return bad("track 2 has characters after its end sentinel");
		for (size_t i = sep + 1; i < end; i++)
			if (!is_digit(scan[i]))
				return bad("track 2 discretionary data holds a non-digit");
	} else if (scan.size() >= qr.size() &&
		   std::equal(qr.begin(), qr.end(), scan.begin(), [](char a, char b) {
			   return a == (b >= 'a' && b <= 'z' ? b - 'a' + 'A' : b);
		   })) {
		for (char c : scan.substr(qr.size())) {
			if (!is_digit(c))
				return bad("QR payload after LOYALTY: holds a non-digit");
			digits += c;
		}
	} else {
		for (char c : scan) {
			if (c == ' ' || c == '-')
				continue;
			if (!is_digit(c))
				return bad(fmt::format("'{}' is not a digit, space or dash",
						       std::isprint(static_cast<unsigned char>(c)) ? c : '?'));
			digits += c;
		}
	}
	if (digits.empty())
		return bad("scan holds no digits");
	return digits;
}

bool luhn_valid(std::string_view digits) noexcept
{
	int sum = 0;
	bool twice = false;
	for (size_t i = digits.size(); i-- > 0;) {
		int d = digits[i] - '0';
		if (twice) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		twice = !twice;
	}
	return !digits.empty() && sum % 10 == 0;
}

bool gs1_valid(std::string_view digits) noexcept
{
	// GS1 mod 10: from the right, the check digit weighs 1, then 3, 1, 3, ...
	int sum = 0;
	bool three = false;
	for (size_t i = digits.size(); i-- > 0;) {
		int d = digits[i] - '0';
		sum += three ? 3 * d : d;
		three = !three;
	}
	return digits.size() >= 2 && sum % 10 == 0;
}

Result<std::string> parse_card_scan(std::string_view scan, const CardRule &rule)
{
	auto digits = card_digits(scan);
	if (!digits)
		return digits;
	const auto n = static_cast<int>(digits->size());
	if (n < rule.min_length || n > rule.max_length)
		return bad(fmt::format("number ending {} has {} digits, the program takes {} to {}",
				       mask_card(*digits), n, rule.min_length, rule.max_length));
	switch (rule.check) {
	case CardCheck::luhn:
		if (!luhn_valid(*digits))
			return bad(fmt::format("number {} fails its Luhn check digit", mask_card(*digits)));
		break;
	case CardCheck::ean13:
		if (!gs1_valid(*digits))
			return bad(fmt::format("number {} fails its GS1 (EAN-13) check digit",
					       mask_card(*digits)));
		break;
	case CardCheck::none:
		break;
	}
	return digits;
}

std::string mask_card(std::string_view digits)
{
	size_t show = digits.size() >= 8 ? 4 : digits.size() / 2;
	return "****" + std::string(digits.substr(digits.size() - show));
}

} // namespace loy
