DROP INDEX alerts_open_deployment;
