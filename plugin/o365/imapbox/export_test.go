package imapbox

// SetBeforeMove lets a test look at the world just before a MOVE is sent.
func SetBeforeMove(f func(folder string)) { beforeMove = f }
