package events

import (
	"errors"
	"sync/atomic"
)

var errTime = errors.New("not an RFC 3339 time")

// daysFromCivil returns days since 1970-01-01 for a proleptic Gregorian date.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func digits(b []byte, n int) (int64, bool) {
	if len(b) < n {
		return 0, false
	}
	var v int64
	for i := 0; i < n; i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int64(c)
	}
	return v, true
}

// ParseRFC3339Millis parses an RFC 3339 date-time ("2026-11-22T10:00:00Z",
// any fractional precision, "Z" or "±hh:mm" offset, 'T'/'t' and 'Z'/'z'
// accepted) into Unix milliseconds. Fractions beyond milliseconds are
// truncated (toward the earlier instant). Leap seconds (:60) are rejected.
func ParseRFC3339Millis(b []byte) (int64, error) { return parseRFC3339Millis(b, nil) }

// dayCache remembers the date part (YYYY-MM-DD) of the last time a
// Decoder parsed, and its day number: consecutive events are mostly of
// the same day.
type dayCache struct {
	date [10]byte
	days int64
	ok   bool
}

// parseRFC3339Millis is ParseRFC3339Millis, with the date part's day
// number taken from c (when not nil) when it is the date c remembers.
func parseRFC3339Millis(b []byte, c *dayCache) (int64, error) {
	// YYYY-MM-DDTHH:MM:SS
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, errTime
	}
	var days int64
	if c != nil && c.ok && string(b[:10]) == string(c.date[:]) {
		days = c.days
	} else {
		y, ok1 := digits(b[0:], 4)
		mo, ok2 := digits(b[5:], 2)
		d, ok3 := digits(b[8:], 2)
		if !(ok1 && ok2 && ok3) || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
			return 0, errTime
		}
		days = daysFromCivil(y, mo, d)
		if c != nil {
			copy(c.date[:], b)
			c.days, c.ok = days, true
		}
	}
	h, ok4 := digits(b[11:], 2)
	mi, ok5 := digits(b[14:], 2)
	s, ok6 := digits(b[17:], 2)
	if !(ok4 && ok5 && ok6) || h > 23 || mi > 59 || s > 59 {
		return 0, errTime
	}
	i := 19
	var ms int64
	if b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start < 3 {
				ms = ms*10 + int64(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return 0, errTime
		}
		for ; n < 3; n++ {
			ms *= 10
		}
	}
	if i >= len(b) {
		return 0, errTime
	}
	var off int64
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, errTime
		}
		oh, ok1 := digits(b[i+1:], 2)
		om, ok2 := digits(b[i+4:], 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, errTime
		}
		off = (oh*60 + om) * 60000
		if b[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return 0, errTime
	}
	if i != len(b) {
		return 0, errTime
	}
	return ((days*24+h)*60+mi)*60000 + s*1000 + ms - off, nil
}

// AppendTime appends ms (Unix milliseconds) as RFC 3339 UTC with exactly
// three fractional digits, e.g. 2026-11-22T10:00:00.123Z.
func AppendTime(b []byte, ms int64) []byte {
	days := ms / 86400000
	rem := ms % 86400000
	if rem < 0 {
		rem += 86400000
		days--
	}
	date := lastDate.Load()
	if date == nil || date.days != days {
		date = &dateText{days: days}
		y, m, d := civilFromDays(days)
		date.text = [11]byte{
			byte('0' + y/1000%10), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
			byte('0' + m/10), byte('0' + m%10), '-',
			byte('0' + d/10), byte('0' + d%10), 'T'}
		lastDate.Store(date)
	}
	h := rem / 3600000
	mi := rem / 60000 % 60
	s := rem / 1000 % 60
	f := rem % 1000
	b = append(b, date.text[:]...)
	return append(b,
		twoDigits[2*h], twoDigits[2*h+1], ':',
		twoDigits[2*mi], twoDigits[2*mi+1], ':',
		twoDigits[2*s], twoDigits[2*s+1], '.',
		byte('0'+f/100), twoDigits[2*(f%100)], twoDigits[2*(f%100)+1], 'Z')
}

// dateText is a day's date as AppendTime writes it, "YYYY-MM-DDT".
type dateText struct {
	days int64
	text [11]byte
}

// lastDate is the date AppendTime wrote last: the records of a run are
// mostly of one day, so their dates are written without a division.
// Each value is immutable once stored, so goroutines share it safely.
var lastDate atomic.Pointer[dateText]

// twoDigits holds "00" to "99".
const twoDigits = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// FormatTime returns ms as RFC 3339 UTC with three fractional digits.
func FormatTime(ms int64) string { return string(AppendTime(make([]byte, 0, 24), ms)) }
