DROP TABLE platform_instructions;
