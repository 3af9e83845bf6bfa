package com.shop;

public class Invoice {
    /** Total of all lines including VAT. */
    public static double totalWithVat(double net, double vatRate) {
        return net * (1 + vatRate);
    }
}
