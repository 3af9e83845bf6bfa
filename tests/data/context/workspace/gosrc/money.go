package gosrc

// ConvertAmount converts an amount between currencies at a rate.
func ConvertAmount(amount float64, rate float64) float64 {
	return amount * rate
}
