"""What companies are charged for, paid from the company balance; the registry of charged items."""
