package gosrc

func pay(amount float64) float64 {
	return ConvertAmount(amount, 1.1)
}
