//! CPF, CNPJ, CEP, UF, dates and money rules (in progress).
