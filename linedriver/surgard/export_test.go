package surgard

import "time"

// SetClock replaces the driver's clock (tests).
func (d *Driver) SetClock(now func() time.Time) { d.now = now }

// Beat runs one heartbeat check (tests).
func (d *Driver) Beat() { d.heartbeat(time.Duration(d.o.Heartbeat)) }
